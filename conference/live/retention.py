"""One retention policy per event: how many days after the event's end each kind of personal record is deleted.

| kind | records | column |
|---|---|---|
| chat | chat messages (also those a moderator deleted) and the reports of them | `chat_retention_days` |
| questions | questions with their answers, the votes for them and the reports of them | `question_retention_days` |
| votes | who voted for which question (the questions keep their count) | `vote_retention_days` |
| reports | every report (chat and questions), mutes and bans | `report_retention_days` |
| mail log | outbox mails (not while "sending"), reminder markers, announcement mails | `mail_log_retention_days` |
| attendance | presence per person, room and minute (`conference.attendance`) | `attendance_retention_days` |
| feedback | session ratings and comments with who gave them (`conference.feedback`) | `feedback_retention_days` |

Reactions are stored only as counts per room and minute, slide downloads as counts per file and day (no
person in either). Issued certificates of attendance stay while the event exists, so they can still be
checked; who is in a room right now lives in the process (and, with several workers, in Redis under a
15-second lease) only while the connection is open. `purge_expired` deletes what is due and, after the
commit, drops the caches that hold it (history payloads, the session pages' question panels) in this process
and, through the relay, in every worker (`retention_purged`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, or_, select

from conference.agenda import pagecache
from conference.agenda.models import ConferenceSession
from conference.attendance.models import PresenceMinute
from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import ValidationFailed
from conference.core.mail import MailStatus, OutboxMessage
from conference.core.passes import repeat_every, run_in_transaction
from conference.core.signals import retention_purged
from conference.events.models import Event
from conference.extensions import db
from conference.feedback.models import SessionFeedback
from conference.live.models import ChatMessage, ChatReport, LiveSanction, Question, QuestionVote
from conference.mails.models import AnnouncementMail, SentReminder, SlidesNotice
from conference.settings import get_settings

MAX_RETENTION_DAYS = 3650
log = logging.getLogger("conference.live.retention")


@dataclass(frozen=True)
class RetentionKind:
    key: str
    column: str
    label: Any
    covers: Any


KINDS = (
    RetentionKind("chat", "chat_retention_days", _l("Chat"),
                  _l("chat messages (also deleted ones) and reports of them")),
    RetentionKind("questions", "question_retention_days", _l("Questions and answers"),
                  _l("questions with their authors' names, answers, votes and reports of them")),
    RetentionKind("votes", "vote_retention_days", _l("Votes"),
                  _l("who voted for which question (the number of votes stays with the question)")),
    RetentionKind("reports", "report_retention_days", _l("Reports and sanctions"),
                  _l("reports of messages and questions, mutes and bans")),
    RetentionKind("mail_log", "mail_log_retention_days", _l("Mail log"),
                  _l("the event's mails (addresses and texts), markers of sent reminders and notices, "
                     "announcement mails")),
    RetentionKind("attendance", "attendance_retention_days", _l("Attendance"),
                  _l("who was present in which room in which minute (certificates already issued stay)")),
    RetentionKind("feedback", "feedback_retention_days", _l("Session feedback"),
                  _l("ratings and comments of sessions and who gave them (the organisers' summaries stay)")),
)
KIND_BY_COLUMN = {kind.column: kind for kind in KINDS}


@dataclass
class PurgeReport:
    """What one purge deleted, by kind, and where caches must forget it."""

    deleted: dict[str, int] = field(default_factory=lambda: {kind.key: 0 for kind in KINDS})
    events: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def policy(event: Event) -> list[tuple[RetentionKind, int | None]]:
    return [(kind, getattr(event, kind.column)) for kind in KINDS]


def delete_on(event: Event, days: int | None) -> datetime | None:
    """When records kept for `days` after the event's end are deleted (None: kept while the event exists)."""
    return None if days is None else event.ends_at + timedelta(days=days)


def set_retention(event: Event, *, periods: dict[str, int | None], actor: User) -> None:
    """Set some of the event's periods (`periods` by column name; None keeps those records)."""
    for column, days in periods.items():
        if column not in KIND_BY_COLUMN:
            raise ValidationFailed(_("Unknown retention setting."), field=column)
        if days is not None and not 0 <= days <= MAX_RETENTION_DAYS:
            raise ValidationFailed(_("Between 0 and %(n)d days, please.", n=MAX_RETENTION_DAYS), field=column)
    for column, days in periods.items():
        setattr(event, column, days)
    db.session.flush()


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def purge_event(event: Event, *, now: datetime, report: PurgeReport) -> None:
    """Delete every kind of the event's records whose period has passed at `now`."""
    due = {kind.key for kind, days in policy(event) if (moment := delete_on(event, days)) is not None
           and moment <= now}
    if not due:
        return
    messages = select(ChatMessage.id).where(ChatMessage.event_id == event.id).scalar_subquery()
    questions = select(Question.id).where(Question.event_id == event.id).scalar_subquery()
    sessions = select(ConferenceSession.id).where(ConferenceSession.event_id == event.id).scalar_subquery()
    run = db.session.execute
    if "chat" in due:
        run(delete(ChatReport).where(ChatReport.message_id.in_(messages)))
        report.deleted["chat"] += _rowcount(run(delete(ChatMessage).where(ChatMessage.event_id == event.id)))
    if "questions" in due:
        run(delete(ChatReport).where(ChatReport.question_id.in_(questions)))
        run(delete(QuestionVote).where(QuestionVote.question_id.in_(questions)))
        report.deleted["questions"] += _rowcount(run(delete(Question).where(Question.event_id == event.id)))
    if "votes" in due:
        report.deleted["votes"] += _rowcount(run(delete(QuestionVote).where(QuestionVote.question_id.in_(questions))))
    if "reports" in due:
        report.deleted["reports"] += _rowcount(run(delete(ChatReport).where(ChatReport.event_id == event.id)))
        report.deleted["reports"] += _rowcount(run(delete(LiveSanction).where(LiveSanction.event_id == event.id)))
    if "mail_log" in due:
        # A mail being handed to the server right now ("sending") goes with the next pass.
        report.deleted["mail_log"] += _rowcount(run(delete(OutboxMessage).where(
            OutboxMessage.event_id == event.id, OutboxMessage.status != MailStatus.SENDING)))
        for model in (SentReminder, SlidesNotice):
            report.deleted["mail_log"] += _rowcount(run(delete(model).where(model.session_id.in_(sessions))))
        report.deleted["mail_log"] += _rowcount(run(delete(AnnouncementMail).where(
            AnnouncementMail.event_id == event.id)))
    if "attendance" in due:
        report.deleted["attendance"] += _rowcount(run(delete(PresenceMinute).where(
            PresenceMinute.event_id == event.id)))
    if "feedback" in due:
        report.deleted["feedback"] += _rowcount(run(delete(SessionFeedback).where(
            SessionFeedback.event_id == event.id)))
    report.events.append(event.id)


def purge_expired(now: datetime | None = None) -> PurgeReport:
    """Apply every event's retention policy at `now` (default: the current time). Flushes; after the commit
    the caches of every worker drop what was deleted (`retention_purged`)."""
    now = now or utcnow()
    report = PurgeReport()
    columns = [getattr(Event, kind.column) for kind in KINDS]
    candidates = select(Event).where(or_(*(column.is_not(None) for column in columns))).order_by(Event.id)
    for event in db.session.scalars(candidates).all():
        purge_event(event, now=now, report=report)
    db.session.flush()
    db.session.expire_all()  # bulk deletes: no loaded object may still show a deleted row
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for event_id in report.events:
        after_commit.defer(retention_purged.send, app, event_id=event_id)
    return report


def run_pass(app: Flask, now: datetime | None = None) -> PurgeReport:
    """One purge in its own application context and transaction (the server's pass, the CLI, the tests)."""
    return run_in_transaction(app, lambda: purge_expired(now))


def start_retention_pass(app: Flask, start_background_task: Callable[..., Any],
                         sleep: Callable[[float], Any]) -> None:
    """Apply the retention policies every RETENTION_INTERVAL seconds in this process (0: never; the daily
    timer still runs `conference live purge`), so this process's caches drop purged records at once."""
    repeat_every(get_settings(app).retention_interval, lambda: run_pass(app), name="retention",
                 start_background_task=start_background_task, sleep=sleep)


def forget_cached(app: Flask, event_id: int) -> None:
    """Drop this process's cached copies of the event's live records: chat payloads kept for history answers
    and the session pages' rendered question panels."""
    from conference.live.broadcast import live_state

    with app.app_context():
        event = db.session.get(Event, event_id)
        if event is None:
            return
        session_ids = list(db.session.scalars(select(ConferenceSession.id)
                                              .where(ConferenceSession.event_id == event_id)))
        rooms = {f"lobby:{event.slug}", *(f"session:{session_id}" for session_id in session_ids)}
        state = live_state(app)
        _drop(state.payloads, rooms)
        for session_id in session_ids:
            pagecache.forget_panels(session_id, app)


def _drop(payloads: dict[int, dict[str, Any]], rooms: Iterable[str]) -> None:
    rooms = set(rooms)
    for message_id in [key for key, payload in list(payloads.items()) if payload.get("room") in rooms]:
        payloads.pop(message_id, None)


def on_retention_purged(sender: Flask, *, event_id: int, **kwargs: Any) -> None:
    """Receiver of `retention_purged` (here after the commit, and in every other worker through the relay)."""
    forget_cached(sender, event_id)
