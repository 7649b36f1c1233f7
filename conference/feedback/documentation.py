"""The event's documentation page: per released session the slides, recording, answered questions and the
organisers' summary, and the figures the organisers choose to publish. Services flush, never commit."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from conference.agenda.public import released_session, released_sessions
from conference.agenda.schedule import PSession
from conference.core.db import utcnow
from conference.core.errors import NotFound, ValidationFailed
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.feedback.models import EventDocumentation, SessionSummary
from conference.live.models import Question
from conference.presentations.models import Presentation
from conference.presentations.services import published_presentations

MAX_SUMMARY_LENGTH = 5000
SURVEY_URL = re.compile(r"^https://[^\s\"'<>\\]+$")
#: The figures an organiser may publish, in the order shown (key of `documentation_figures`, column).
FIGURES = (("registered", "shows_registered"), ("attended", "shows_attended"), ("sessions", "shows_sessions"),
           ("questions", "shows_questions"),
           ("slides", "shows_slides"))


def documentation_for(event: Event) -> EventDocumentation:
    """The event's settings; an unsaved default (not published, no figures) when none were saved."""
    settings = db.session.get(EventDocumentation, event.id)
    return settings if settings is not None else EventDocumentation(
        event_id=event.id, is_published=False, survey_url=None, shows_registered=False, shows_attended=False,
        shows_sessions=False, shows_questions=False, shows_slides=False)


def update_documentation(event: Event, *, is_published: Any, survey_url: Any, shows_registered: Any = False,
                         shows_attended: Any = False,
                         shows_sessions: Any = False, shows_questions: Any = False,
                         shows_slides: Any = False) -> EventDocumentation:
    """Publish or withdraw the page, choose its figures and set the survey link (https://, at most 500)."""
    url = survey_url.strip() if isinstance(survey_url, str) else ""
    if url and (len(url) > 500 or not SURVEY_URL.match(url)):
        raise ValidationFailed(_("The survey link must start with https:// and have at most 500 characters."),
                               field="survey_url")
    settings = db.session.get(EventDocumentation, event.id)
    if settings is None:
        settings = EventDocumentation(event_id=event.id)
        db.session.add(settings)
    settings.is_published, settings.survey_url = bool(is_published), url or None
    settings.shows_registered, settings.shows_sessions = bool(shows_registered), bool(shows_sessions)
    settings.shows_attended = bool(shows_attended)
    settings.shows_questions, settings.shows_slides = bool(shows_questions), bool(shows_slides)
    db.session.flush()
    return settings


def save_summary(event: Event, session_id: int, *, text: Any) -> SessionSummary | None:
    """Set the summary of a released session (Markdown, at most 5000 characters); an empty text removes it."""
    if released_session(event, session_id) is None:
        raise NotFound(_("No such session."))
    body = text.strip() if isinstance(text, str) else ""
    if len(body) > MAX_SUMMARY_LENGTH:
        raise ValidationFailed(_("The summary may have at most %(n)d characters.", n=MAX_SUMMARY_LENGTH),
                               field="text")
    summary = db.session.get(SessionSummary, session_id)
    if not body:
        if summary is not None:
            db.session.delete(summary)
            db.session.flush()
        return None
    if summary is None:
        summary = SessionSummary(session_id=session_id, event_id=event.id)
        db.session.add(summary)
    summary.text = body
    db.session.flush()
    return summary


def _documented(event: Event) -> list[PSession]:
    """The released sessions the page documents: not cancelled, not breaks, by start."""
    return [s for s in released_sessions(event) if not s.cancelled and not s.is_break]


def documentation_figures(event: Event) -> dict[str, int]:
    """The figures the page may publish, computed now: people registered (any role), people who attended
    (present in a session room or the lobby, conference.attendance), documented sessions, questions asked in
    them (those not deleted by the retention policy) and published slide decks."""
    from conference.attendance.services import attendee_ids

    sessions = _documented(event)
    ids = [s.id for s in sessions]
    registered = db.session.scalar(select(func.count()).select_from(EventMembership)
                                   .where(EventMembership.event_id == event.id)) or 0
    questions = (db.session.scalar(select(func.count()).select_from(Question).where(
        Question.event_id == event.id, Question.session_id.in_(ids))) or 0) if ids else 0
    return {"registered": registered, "attended": len(attendee_ids(event)), "sessions": len(sessions),
            "questions": questions,
            "slides": len(published_presentations(event))}


def published_figures(event: Event, settings: EventDocumentation) -> list[tuple[str, int]]:
    """(key, value) of the figures the organisers chose to publish."""
    figures = documentation_figures(event)
    return [(key, figures[key]) for key, column in FIGURES if getattr(settings, column) and key in figures]


@dataclass
class DocumentedSession:
    entry: PSession
    slides: list[Presentation] = field(default_factory=list)
    recording_url: str | None = None
    answered: list[tuple[str, str]] = field(default_factory=list)  # (question, answer)
    summary: str = ""


def documented_sessions(event: Event, *, show_links: bool, now: datetime | None = None) -> list[DocumentedSession]:
    """What the page shows per session, from the release only. Recordings: after the session ended and only
    for those who may see the event's links (`show_links`). Questions: answered, not hidden, without authors."""
    now = now or utcnow()
    sessions = _documented(event)
    ids = [s.id for s in sessions]
    slides: dict[int, list[Presentation]] = {}
    for presentation in published_presentations(event, now):
        slides.setdefault(presentation.session_id, []).append(presentation)
    answered: dict[int, list[tuple[str, str]]] = {}
    if ids:
        for question in db.session.scalars(select(Question).where(
                Question.event_id == event.id, Question.session_id.in_(ids), Question.is_answered.is_(True),
                Question.hidden_at.is_(None)).order_by(Question.vote_count.desc(), Question.id)):
            answered.setdefault(question.session_id, []).append((question.text, question.answer or ""))
    summaries = {row.session_id: row.text for row in db.session.scalars(
        select(SessionSummary).where(SessionSummary.event_id == event.id))} if ids else {}
    return [DocumentedSession(
        entry=s, slides=slides.get(s.id, []),
        recording_url=s.recording_url if show_links and s.recording_url and s.has_ended(now) else None,
        answered=answered.get(s.id, []), summary=summaries.get(s.id, "")) for s in sessions]


def summaries_of(event: Event) -> dict[int, str]:
    return {row.session_id: row.text for row in db.session.scalars(
        select(SessionSummary).where(SessionSummary.event_id == event.id))}
