"""The moderators' queue of reported chat messages and questions: filing, listing and dismissing reports."""

from __future__ import annotations

from sqlalchemy import select

from conference.core.db import utcnow
from conference.events.models import Event
from conference.extensions import db
from conference.live.access import Standing
from conference.live.models import ChatReport

REPORT_REASON_LIMIT = 500


def file_report(event_id: int, *, reporter: Standing, reason: str, message_id: int | None = None,
                question_id: int | None = None) -> ChatReport:
    """Report a message or a question (one of `message_id`, `question_id`), once per reporter: a repeat returns
    the first report. The callers check who may report what."""
    target = ChatReport.message_id == message_id if message_id is not None else ChatReport.question_id == question_id
    existing = db.session.scalar(select(ChatReport).where(target, ChatReport.reporter_id == reporter.user_id))
    if existing is not None:
        return existing
    report = ChatReport(event_id=event_id, message_id=message_id, question_id=question_id, reporter_id=reporter.user_id,
                        reason=reason[:REPORT_REASON_LIMIT])
    db.session.add(report)
    db.session.flush()
    return report


def open_reports(event: Event) -> list[ChatReport]:
    """The event's unresolved reports of messages and questions, oldest first."""
    return list(db.session.scalars(select(ChatReport).where(ChatReport.event_id == event.id,
                                                            ChatReport.resolved_at.is_(None))
                                   .order_by(ChatReport.created_at)))


def dismiss_report(report: ChatReport, *, actor: Standing) -> None:
    report.resolved_at = utcnow()
    report.resolved_by_id = actor.user_id
    db.session.flush()
