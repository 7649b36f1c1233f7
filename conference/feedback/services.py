"""Feedback rules: one rating (1-5) and comment per person and session, the views of speakers and organisers.
Services flush, never commit.

Who sees what: speakers see their sessions' average, count and comments without names; organisers see the same
and a name only where the attendee ticked "show my name"; nobody else sees any feedback."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from conference.agenda.public import released_session, released_sessions_of_speaker
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from conference.core.permissions import Permission, has_permission
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.feedback.models import SessionFeedback
from conference.live.models import Question

MAX_COMMENT_LENGTH = 1000


def feedback_of(session_id: int, user: Any) -> SessionFeedback | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(select(SessionFeedback).where(SessionFeedback.session_id == session_id,
                                                           SessionFeedback.user_id == user.id))


def feedback_opens_at(event: Event, session_id: int) -> datetime | None:
    """When the released session starts (feedback is taken from then on); None for drafts, cancelled sessions
    and breaks, which take none."""
    entry = released_session(event, session_id)
    if entry is None or entry.cancelled or entry.is_break or entry.start_at is None:
        return None
    return entry.start_at


def may_give_feedback(event: Event, session_id: int, user: Any, now: datetime | None = None) -> bool:
    opens_at = feedback_opens_at(event, session_id)
    return has_permission(user, event, Permission.JOIN_LIVE) and opens_at is not None \
        and opens_at <= (now or utcnow())


def give_feedback(event: Event, session_id: int, *, user: User, rating: Any, comment: Any = "",
                  shows_name: Any = False, now: datetime | None = None) -> SessionFeedback:
    """Save `user`'s rating of a released session of `event`, replacing an earlier one. People registered for
    the event only (any role), from the session's start on; a rating from 1 to 5, a comment of at most
    1000 characters."""
    if not has_permission(user, event, Permission.JOIN_LIVE):
        raise NotAllowed(_("Please register for the event to give feedback."), code="not_registered")
    opens_at = feedback_opens_at(event, session_id)
    if opens_at is None:
        raise NotFound(_("No such session."))
    if opens_at > (now or utcnow()):
        raise Conflict(_("Feedback opens when the session starts."), code="not_started")
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating.strip())
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationFailed(_("Please choose a rating from 1 to 5."), field="rating")
    text = comment.strip() if isinstance(comment, str) else ""
    if len(text) > MAX_COMMENT_LENGTH:
        raise ValidationFailed(_("The comment may have at most %(n)d characters.", n=MAX_COMMENT_LENGTH),
                               field="comment")
    feedback = feedback_of(session_id, user)
    if feedback is None:
        feedback = SessionFeedback(event_id=event.id, session_id=session_id, user_id=user.id)
        db.session.add(feedback)
    feedback.rating, feedback.comment, feedback.shows_name = rating, text, bool(shows_name)
    db.session.flush()
    return feedback


@dataclass
class FeedbackSummary:
    """One session's feedback as shown to speakers (`names` empty) or organisers."""

    session_id: int
    title: str
    count: int = 0
    average: float | None = None
    by_rating: dict[int, int] = field(default_factory=dict)
    comments: list[tuple[str, str | None]] = field(default_factory=list)  # (text, name or None), newest first
    questions: int = 0


def _summaries(event: Event, sessions: list[tuple[int, str]], *, with_names: bool) -> list[FeedbackSummary]:
    ids = [session_id for session_id, _title in sessions]
    rows = db.session.execute(
        select(SessionFeedback, User.name).join(User, User.id == SessionFeedback.user_id)
        .where(SessionFeedback.event_id == event.id, SessionFeedback.session_id.in_(ids))
        .order_by(SessionFeedback.updated_at.desc(), SessionFeedback.id.desc())).all() if ids else []
    questions = dict(db.session.execute(
        select(Question.session_id, func.count()).where(Question.event_id == event.id,
                                                         Question.session_id.in_(ids))
        .group_by(Question.session_id)).all()) if ids else {}
    result = {session_id: FeedbackSummary(session_id=session_id, title=title,
                                          questions=questions.get(session_id, 0)) for session_id, title in sessions}
    totals: dict[int, int] = {}
    for feedback, name in rows:
        summary = result[feedback.session_id]
        summary.count += 1
        summary.by_rating[feedback.rating] = summary.by_rating.get(feedback.rating, 0) + 1
        totals[feedback.session_id] = totals.get(feedback.session_id, 0) + feedback.rating
        if feedback.comment:
            shown = name if with_names and feedback.shows_name and name else None
            summary.comments.append((feedback.comment, shown))
    for session_id, total in totals.items():
        result[session_id].average = round(total / result[session_id].count, 1)
    return list(result.values())


def organiser_overview(event: Event) -> list[FeedbackSummary]:
    """Every released session's feedback (names where the attendee allowed it), by start."""
    from conference.agenda.public import released_sessions

    sessions = [(s.id, s.title) for s in released_sessions(event) if not s.is_break]
    return _summaries(event, sessions, with_names=True)


def speaker_figures(event: Event, speaker_id: int) -> dict[str, Any]:
    """A speaker's own released sessions: feedback without any name, questions asked, and the event's number
    of registrations."""
    sessions = [(entry.id, entry.title) for entry, _role in released_sessions_of_speaker(event, speaker_id)]
    registered = db.session.scalar(select(func.count()).select_from(EventMembership)
                                   .where(EventMembership.event_id == event.id)) or 0
    return {"registered": registered, "sessions": _summaries(event, sessions, with_names=False)}


# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The account's session ratings and comments."""
    rows = db.session.execute(
        select(SessionFeedback, Event.slug).join(Event, Event.id == SessionFeedback.event_id)
        .where(SessionFeedback.user_id == user_id).order_by(SessionFeedback.id)).all()
    return {"session_feedback": [
        {"event": slug, "session_id": row.session_id, "rating": row.rating, "comment": row.comment,
         "show_my_name_to_organisers": row.shows_name, "updated_at": row.updated_at.isoformat()}
        for row, slug in rows]}


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Delete the account's ratings and comments (they were the person's words, not the event's record)."""
    for row in db.session.scalars(select(SessionFeedback).where(SessionFeedback.user_id == user_id)):
        db.session.delete(row)
    db.session.flush()
