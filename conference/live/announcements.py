"""Announcements to every room of an event, and the latest one for people who join late."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select

from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.events.models import Event
from conference.extensions import db
from conference.live import broadcast
from conference.live.inputs import clean_text
from conference.live.models import (
    Announcement,
)
from conference.live.payloads import announcement_payload
from conference.live.rooms import RoomInfo, event_room

ANNOUNCEMENT_LIMIT = 500


def announce(event: Event, *, text: str, actor: User) -> Announcement:
    """Store an announcement; after commit `announcement` goes to every room of the event."""
    announcement = Announcement(event_id=event.id, author_id=actor.id,
                                text=clean_text(text, field="text", limit=ANNOUNCEMENT_LIMIT))
    db.session.add(announcement)
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, event_room(event), "announcement",
                       announcement_payload(announcement, event.slug))
    return announcement


def latest_announcement(event: Event | RoomInfo, *, within: timedelta = timedelta(hours=2)) -> Announcement | None:
    """The event's newest announcement of the last `within` (shown to people who join late)."""
    event_id = event.event_id if isinstance(event, RoomInfo) else event.id
    return db.session.scalar(_latest_announcement_query(), {"event_id": event_id, "since": utcnow() - within})


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
