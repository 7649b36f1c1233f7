"""The personal agenda: starred sessions and the secret calendar feed, and the account's rights over both.

Services flush, never commit, and never read the request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import current_app
from sqlalchemy import select

from conference.agenda.models import CalendarFeed, ConferenceSession, StarredSession
from conference.agenda.public import released_session
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.ids import parse_id
from conference.events.models import Event
from conference.extensions import db


def star_session(session: ConferenceSession, *, user: User) -> None:
    """Add to the user's agenda (idempotent)."""
    exists = db.session.scalar(select(StarredSession.id).where(StarredSession.user_id == user.id,
                                                               StarredSession.session_id == session.id))
    if exists is None:
        db.session.add(StarredSession(user_id=user.id, session_id=session.id))
        db.session.flush()


def unstar_session(session: ConferenceSession, *, user: User) -> None:
    """Remove from the user's agenda (idempotent)."""
    star = db.session.scalar(select(StarredSession).where(StarredSession.user_id == user.id,
                                                          StarredSession.session_id == session.id))
    if star is not None:
        db.session.delete(star)
        db.session.flush()


def starred_session_ids(event: Event, user: Any) -> set[int]:
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    return set(db.session.scalars(
        select(StarredSession.session_id).join(ConferenceSession)
        .where(StarredSession.user_id == user.id, ConferenceSession.event_id == event.id)))


def active_calendar_feed(event: Event, user: User) -> CalendarFeed | None:
    return db.session.scalar(select(CalendarFeed).where(
        CalendarFeed.event_id == event.id, CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None)))


def create_calendar_feed(event: Event, *, user: User) -> CalendarFeed:
    """A fresh secret address; any previous one of this person for this event stops working."""
    revoke_calendar_feed(event, user=user)
    feed = CalendarFeed(event_id=event.id, user_id=user.id, nonce=secrets.token_urlsafe(32))
    db.session.add(feed)
    db.session.flush()
    return feed


def revoke_calendar_feed(event: Event, *, user: User) -> None:
    feed = active_calendar_feed(event, user)
    if feed is not None:
        feed.revoked_at = utcnow()
        db.session.flush()


def calendar_feed_token(feed: CalendarFeed) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"calendar-feed:{feed.id}:{feed.nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{feed.id}-{digest[:40]}"


def calendar_feed_for_token(event: Event, token: str) -> CalendarFeed | None:
    """The active feed this token belongs to, or None (compared in constant time)."""
    feed_id = parse_id(token.partition("-")[0])
    if feed_id is None or len(token) > 80:
        return None
    feed = db.session.get(CalendarFeed, feed_id)
    if feed is None or feed.event_id != event.id or feed.revoked_at is not None or feed.user.is_disabled:
        return None
    return feed if hmac.compare_digest(calendar_feed_token(feed), token) else None


# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The personal agenda (starred sessions) and calendar feeds; the feeds' secret addresses are left out.

    Titles as released (None while no release names the session): the working agenda may hold a draft title
    that the person may not see."""
    stars = db.session.execute(
        select(StarredSession, ConferenceSession, Event)
        .join(ConferenceSession, ConferenceSession.id == StarredSession.session_id)
        .join(Event, Event.id == ConferenceSession.event_id)
        .where(StarredSession.user_id == user_id).order_by(StarredSession.id)).all()
    feeds = db.session.execute(
        select(CalendarFeed, Event).join(Event, Event.id == CalendarFeed.event_id)
        .where(CalendarFeed.user_id == user_id).order_by(CalendarFeed.id)).all()
    return {
        "personal_agenda": [{"event": event.slug, "session_id": session.id,
                             "session_title": released.title if (released := released_session(event, session.id))
                             else None, "starred_at": star.created_at.isoformat()} for star, session, event in stars],
        "calendar_feeds": [{"event": event.slug, "created_at": feed.created_at.isoformat(),
                            "revoked_at": feed.revoked_at.isoformat() if feed.revoked_at else None}
                           for feed, event in feeds],
    }


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Remove the personal agenda and the calendar feeds (their addresses stop working at once)."""
    for model in (StarredSession, CalendarFeed):
        for row in db.session.scalars(select(model).where(model.user_id == user_id)).all():
            db.session.delete(row)
    db.session.flush()
