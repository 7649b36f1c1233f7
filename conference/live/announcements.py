"""Announcements to every room of an event, and the latest one for people who join late."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, select

from conference.core import after_commit
from conference.core.cache import ExpiringCache
from conference.core.db import utcnow
from conference.core.errors import NotAllowed
from conference.core.permissions import Permission
from conference.events.models import Event
from conference.extensions import db
from conference.live import broadcast
from conference.live.access import Standing
from conference.live.inputs import clean_text
from conference.live.models import Announcement
from conference.live.payloads import announcement_payload
from conference.live.rooms import RoomInfo

ANNOUNCEMENT_LIMIT = 500


def announce(room: RoomInfo, *, text: str, actor: Standing) -> Announcement:
    """Store an announcement in the event of `room` (its event room); after commit `announcement` goes to
    every room of the event. The same snapshots as chat and moderation: `actor` must be allowed to send it."""
    if actor.event_id != room.event_id or not actor.may(Permission.SEND_ANNOUNCEMENT):
        raise NotAllowed(_("Only organisers may send announcements."))
    announcement = Announcement(event_id=room.event_id, author_id=actor.user_id,
                                text=clean_text(text, field="text", limit=ANNOUNCEMENT_LIMIT))
    db.session.add(announcement)
    db.session.flush()
    after_commit.defer(broadcast.forget_announcements, room.event_id)
    after_commit.defer(broadcast.emit_to_room, room.event_room, "announcement",
                       announcement_payload(announcement, room.event_slug))
    return announcement


def latest_announcement(event: Event | RoomInfo, *, within: timedelta = timedelta(hours=2)) -> Announcement | None:
    """The event's newest announcement of the last `within` (shown to people who join late)."""
    event_id = event.event_id if isinstance(event, RoomInfo) else event.id
    return db.session.scalar(_latest_announcement_query(), {"event_id": event_id, "since": utcnow() - within})


_NONE: dict[str, Any] = {}  # kept for an event without a recent announcement (None is never kept)


def latest_announcement_payload(room: RoomInfo, cache: ExpiringCache[int, dict[str, Any]]) -> dict[str, Any] | None:
    """What a join shows of `latest_announcement`, kept in `cache` per event like rooms and standings: a
    reconnect storm is thousands of joins of one event within seconds. An announcement sent from this process
    is seen at once (`broadcast.forget_announcements`), one from another worker within the cache's lifetime
    (`LIVE_CACHE_SECONDS`); everyone already in a room gets it live either way."""

    def load() -> dict[str, Any]:
        announcement = latest_announcement(room)
        return _NONE if announcement is None else announcement_payload(announcement, room.event_slug)

    payload = cache.get(room.event_id, load)
    return payload or None


@lru_cache(maxsize=1)
def _latest_announcement_query() -> Any:
    """Built once (every join asks): constructing the select costs more than running it."""
    since: Any = bindparam("since", type_=Announcement.__table__.c.created_at.type)
    event_id: Any = bindparam("event_id")
    return (select(Announcement).where(Announcement.event_id == event_id, Announcement.created_at >= since)
            .order_by(Announcement.id.desc()).limit(1))


def recent_announcements(event: Event, limit: int = 10) -> list[Announcement]:
    return list(db.session.scalars(select(Announcement).where(Announcement.event_id == event.id)
                                   .order_by(Announcement.id.desc()).limit(limit)))
