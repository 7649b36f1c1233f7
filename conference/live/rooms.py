"""Live rooms: a client-given room name resolved to the cached `RoomInfo` snapshot (or the ORM `LiveRoom`), release
and closing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from conference.agenda.models import ConferenceSession
from conference.agenda.public import released_end, released_session
from conference.core.db import utcnow
from conference.core.errors import NotFound, ValidationFailed
from conference.core.ids import parse_id
from conference.events.models import Event
from conference.extensions import db
from conference.live.models import (
    LiveRoomSetting,
)

CHAT_CLOSES_AFTER_SESSION = timedelta(hours=1)  # then the session chat is a read-only archive
ROOM_PATTERN = re.compile(r"^(lobby|session|event):([a-z0-9-]{1,64})$")


@dataclass(frozen=True)
class LiveRoom:
    """A resolved room name: `lobby:<slug>`, `session:<id>` (chat rooms) or `event:<slug>` (notices only)."""

    name: str
    kind: str
    event: Event
    session: ConferenceSession | None = None

    @property
    def has_chat(self) -> bool:
        return self.kind in ("lobby", "session")


def event_room(event: Event) -> str:
    return f"event:{event.slug}"


def room_for(obj: Event | ConferenceSession) -> str:
    if isinstance(obj, ConferenceSession):
        return f"session:{obj.id}"
    return f"lobby:{obj.slug}"


def _no_room() -> NotFound:
    return NotFound(_("There is no such room."), code="unknown_room", field="room")


def _split_name(name: Any) -> tuple[str, str]:
    """The (kind, key) of a client-given room name; malformed names are errors."""
    if not isinstance(name, str):
        raise ValidationFailed(_("The field 'room' is required."), field="room")
    match = ROOM_PATTERN.match(name)
    if match is None:
        raise _no_room()
    kind, key = match.groups()
    return kind, key


# --- the snapshot for the frequent events: a room's settings as plain values ------------------------------

@dataclass(frozen=True)
class RoomInfo:
    """What every chat message needs to know about its room, as plain values (no ORM objects).

    Cached per process for a few seconds (see `broadcast.LiveState`); moderation changes drop it at once.
    """

    name: str
    kind: str
    event_id: int
    event_slug: str
    session_id: int | None
    closes_at: datetime | None  # a session chat becomes a read-only archive then
    slow_mode_seconds: int
    is_released: bool = True  # False: a session room whose session no release names yet (organisers only)

    @property
    def has_chat(self) -> bool:
        return self.kind in ("lobby", "session")

    @property
    def event_room(self) -> str:
        return f"event:{self.event_slug}"

    def is_closed(self, now: datetime | None = None) -> bool:
        return self.closes_at is not None and self.closes_at <= (now or utcnow())


def load_room_info(name: Any) -> RoomInfo:
    """The room for a client-given name, as plain values; unknown or malformed names are errors."""
    kind, key = _split_name(name)
    session_id: int | None = None
    closes_at: datetime | None = None
    is_released = True
    if kind == "session":
        number = parse_id(key)
        if number is None:
            raise _no_room()
        found = db.session.execute(select(ConferenceSession.id, Event)
                                   .join(Event, Event.id == ConferenceSession.event_id)
                                   .where(ConferenceSession.id == number)).first()
        if found is None:
            raise _no_room()
        session_id, event = found
        event_id, slug = event.id, event.slug
        # The chat closes after the session's released end: the time attendees were told, not the editor's.
        entry = released_session(event, session_id)
        is_released = entry is not None
        end = entry.end_at if entry is not None else None
        closes_at = end + CHAT_CLOSES_AFTER_SESSION if end is not None else None
    else:
        row = db.session.execute(select(Event.id, Event.slug).where(Event.slug == key)).first()
        if row is None:
            raise _no_room()
        event_id, slug = row
    slow = 0
    if kind != "event":
        slow = db.session.scalar(select(LiveRoomSetting.slow_mode_seconds).where(
            LiveRoomSetting.event_id == event_id, LiveRoomSetting.room == name)) or 0
    return RoomInfo(name, kind, event_id, slug, session_id, closes_at, int(slow), is_released)


def require_released_room(info: RoomInfo, *, may_manage_agenda: bool) -> None:
    """A session's room exists for attendees once a release names the session; before that only the
    organisers preparing it may use it (its id would otherwise confirm an unannounced session)."""
    if not info.is_released and not may_manage_agenda:
        raise _no_room()


def live_room(info: RoomInfo) -> LiveRoom:
    """The ORM view of a room, for the rarer actions that need the event or session objects."""
    event = db.session.get(Event, info.event_id)
    session = db.session.get(ConferenceSession, info.session_id) if info.session_id is not None else None
    if event is None or (info.session_id is not None and session is None):
        raise _no_room()
    return LiveRoom(info.name, info.kind, event, session)


def chat_is_closed(room: LiveRoom, now: datetime | None = None) -> bool:
    if room.session is None:
        return False
    end = released_end(room.event, room.session.id)  # the released end, as `load_room_info` takes it
    return end is not None and end + CHAT_CLOSES_AFTER_SESSION <= (now or utcnow())
