"""Rooms (with their streams) and tracks of an event's agenda: the frame the sessions are placed in.

Services flush, never commit; they raise `DomainError` subclasses and never read the request.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from conference.agenda.fields import COLOR_PATTERN, NAME_MAX, STREAM_URL_MAX, clean_text
from conference.agenda.models import Room, StreamKind, TimetableSlot, Track
from conference.agenda.players import StreamAddressError, player_for
from conference.auth.models import User
from conference.core.errors import Conflict, ValidationFailed
from conference.events.models import Event
from conference.extensions import db


def _check_stream(kind: Any, url: Any) -> tuple[str | None, str | None]:
    kind = kind or None
    url = (url or "").strip() or None
    if kind is None and url is None:
        return None, None
    if kind not in set(StreamKind):
        raise ValidationFailed(_("Unknown kind of stream."), field="stream_kind")
    if url is None:
        raise ValidationFailed(_("Give the address of the stream."), field="stream_url")
    if not isinstance(url, str) or len(url) > STREAM_URL_MAX or not re.match(r"^https://[^\s\"'<>]+$", url):
        raise ValidationFailed(_("The stream address must be an https:// URL of at most %(n)d characters.",
                                 n=STREAM_URL_MAX), field="stream_url")
    try:
        player_for(str(kind), url)
    except StreamAddressError as exc:
        raise ValidationFailed(exc.message, field="stream_url", code="bad_stream_address") from None
    return str(kind), url


def create_room(event: Event, *, name: Any, stream_kind: Any = None, stream_url: Any = None,
                position: int | None = None, actor: User | None) -> Room:
    kind, url = _check_stream(stream_kind, stream_url)
    if position is None:
        position = (db.session.scalar(select(func.max(Room.position)).where(Room.event_id == event.id)) or 0) + 1
    room = Room(event_id=event.id, name=clean_text(name, field="name", max_length=NAME_MAX), position=position,
                stream_kind=kind, stream_url=url)
    db.session.add(room)
    db.session.flush()
    return room


def update_room(room: Room, *, name: Any, stream_kind: Any = None, stream_url: Any = None,
                position: int | None = None, actor: User | None) -> Room:
    room.name = clean_text(name, field="name", max_length=NAME_MAX)
    room.stream_kind, room.stream_url = _check_stream(stream_kind, stream_url)
    if position is not None:
        room.position = position
    db.session.flush()
    return room


def delete_room(room: Room, *, actor: User | None) -> None:
    """Only an empty room can be deleted, so no session loses its place unnoticed."""
    if db.session.scalar(select(func.count()).select_from(TimetableSlot).where(TimetableSlot.room_id == room.id)):
        raise Conflict(_("The room still has sessions; move or remove them first."), field="room_id",
                       code="room_in_use")
    db.session.delete(room)
    db.session.flush()


def _check_color(color: Any) -> str:
    if not isinstance(color, str) or not COLOR_PATTERN.match(color):
        raise ValidationFailed(_("The colour must look like #1f5f99."), field="color")
    return color.lower()


def create_track(event: Event, *, name: Any, color: Any = "#3b6ea5", actor: User | None) -> Track:
    track = Track(event_id=event.id, name=clean_text(name, field="name", max_length=NAME_MAX),
                  color=_check_color(color))
    db.session.add(track)
    db.session.flush()
    return track


def update_track(track: Track, *, name: Any, color: Any, actor: User | None) -> Track:
    track.name = clean_text(name, field="name", max_length=NAME_MAX)
    track.color = _check_color(color)
    db.session.flush()
    return track


def delete_track(track: Track, *, actor: User | None) -> None:
    """Sessions of the track keep their place and lose the track."""
    db.session.delete(track)
    db.session.flush()
