"""Q&A: asking, voting, answering, hiding, restoring and reporting questions. Services flush, never commit.

They take the room's snapshot (`RoomInfo`) and the actor's (`Standing`), as chat does.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from conference.core.text import has_forbidden_text
from conference.events.models import Event
from conference.extensions import db
from conference.live import broadcast, reports
from conference.live.access import Standing, require_write
from conference.live.inputs import clean_text
from conference.live.models import (
    ANSWER_TEXT_LIMIT,
    QUESTION_TEXT_LIMIT,
    ChatReport,
    Question,
    QuestionVote,
)
from conference.live.payloads import question_payload
from conference.live.rooms import RoomInfo


def require_session(room: RoomInfo) -> int:
    """The id of the room's session; other rooms have no questions."""
    if room.session_id is None:
        raise ValidationFailed(_("Questions belong to a session."), code="no_qa", field="room")
    return room.session_id


def ask_question(room: RoomInfo, *, author: Standing, text: str, client_id: str) -> tuple[Question, bool]:
    """Ask a question in a session room; a resend with a known `client_id` returns the original.
    After commit: `qa:question` to the room."""
    session_id = require_session(room)
    existing = db.session.scalar(select(Question).where(Question.author_id == author.user_id,
                                                        Question.session_id == session_id,
                                                        Question.client_id == client_id))
    if existing is not None:
        return existing, False
    if room.is_closed():
        raise NotAllowed(_("This session is over; questions are closed."), code="room_closed")
    require_write(author)
    question = Question(event_id=room.event_id, session_id=session_id, author_id=author.user_id,
                        author_name=author.name, text=clean_text(text, field="text", limit=QUESTION_TEXT_LIMIT),
                        client_id=client_id)
    db.session.add(question)
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "qa:question", question_payload(question))
    return question, True


def question_in(question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None:
        raise NotFound(_("There is no such question."), field="question_id")
    return question


def vote_question(question: Question, room: RoomInfo, *, voter: Standing) -> bool:
    """One upvote per person; returns False if they had voted already. After commit: `qa:updated`."""
    require_write(voter)
    if question.author_id == voter.user_id:
        raise ValidationFailed(_("You cannot vote for your own question."), code="own_question")
    if not _locked(question, hidden=False):
        raise _removed()
    try:
        with db.session.begin_nested():
            db.session.add(QuestionVote(question_id=question.id, user_id=voter.user_id))
            db.session.flush()
    except IntegrityError:
        return False
    question.vote_count = db.session.scalar(
        select(func.count()).select_from(QuestionVote).where(QuestionVote.question_id == question.id)) or 0
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "qa:updated", question_payload(question))
    return True


def answer_question(question: Question, room: RoomInfo, *, actor: Standing, answer: str | None) -> None:
    """Mark answered, with an optional written answer. After commit: `qa:updated` to the room."""
    if answer is not None:
        answer = answer.strip()
        if len(answer) > ANSWER_TEXT_LIMIT:
            raise ValidationFailed(_("At most %(n)d characters, please.", n=ANSWER_TEXT_LIMIT), field="answer",
                                   code="too_long")
        if has_forbidden_text(answer):
            raise ValidationFailed(_("The text contains characters that are not allowed."), field="answer")
    if not _locked(question, hidden=False):
        raise _removed()
    question.is_answered = True
    question.answer = answer or question.answer
    question.answered_at = utcnow()
    question.answered_by_id = actor.user_id
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "qa:updated", question_payload(question))


def questions_for(session_id: int, *, include_hidden: bool = False) -> list[Question]:
    """The session's questions by votes, then age; hidden ones only with `include_hidden` (moderators)."""
    query = select(Question).where(Question.session_id == session_id)
    if not include_hidden:
        query = query.where(Question.hidden_at.is_(None))
    return list(db.session.scalars(query.order_by(Question.vote_count.desc(), Question.id)))


def question_in_event(event: Event, question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or question.event_id != event.id:
        raise NotFound(_("There is no such question."), field="question_id")
    return question


def _locked(question: Question, *, hidden: bool) -> bool:
    """Lock the question's row if it is (`hidden`) or is not hidden; False if it is not so (any more).

    A conditional UPDATE that changes nothing: its condition is checked under the database's write lock (the
    row on PostgreSQL, the database on SQLite), held until the commit, so a vote or an answer that races a hide
    comes either before it or not at all, and never broadcasts a question hidden meanwhile.
    """
    condition = Question.hidden_at.is_not(None) if hidden else Question.hidden_at.is_(None)
    result: Any = db.session.execute(update(Question).where(Question.id == question.id, condition)
                                     .values(hidden_at=Question.hidden_at)
                                     .execution_options(synchronize_session=False))
    return bool(result.rowcount == 1)


def _removed() -> Conflict:
    return Conflict(_("The moderators have removed this question."), code="hidden", field="question_id")


def hide_question(question: Question, *, actor: Standing) -> None:
    """Remove a question from every public view and resolve its open reports; its votes are kept for a
    restore. After commit: `qa:hidden` to the session room (clients drop it; moderators' clients mark it)."""
    if question.is_hidden or not _locked(question, hidden=False):
        raise Conflict(_("This question is already hidden."), code="already_hidden", field="question_id")
    now = utcnow()
    question.hidden_at = now
    question.hidden_by_id = actor.user_id
    for report in db.session.scalars(select(ChatReport).where(ChatReport.question_id == question.id,
                                                              ChatReport.resolved_at.is_(None))):
        report.resolved_at = now
        report.resolved_by_id = actor.user_id
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, question.room, "qa:hidden", {"room": question.room, "id": question.id})


def restore_question(question: Question, *, actor: Standing) -> None:
    """Undo `hide_question` (with the votes it had). After commit: `qa:restored` with the question to the room."""
    if not question.is_hidden or not _locked(question, hidden=True):
        raise Conflict(_("This question is not hidden."), code="not_hidden", field="question_id")
    question.hidden_at = None
    question.hidden_by_id = None
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, question.room, "qa:restored", question_payload(question))


def report_question(question: Question, *, reporter: Standing, reason: str) -> ChatReport:
    """Put a question into the moderators' queue (once per reporter), next to reported chat messages."""
    if question.author_id == reporter.user_id:
        raise ValidationFailed(_("You cannot report your own question."), code="own_question")
    if question.is_hidden or not _locked(question, hidden=False):
        raise _removed()
    return reports.file_report(question.event_id, reporter=reporter, reason=reason, question_id=question.id)


def hidden_questions(event: Event, *, limit: int = 200) -> list[Question]:
    """The event's hidden questions, the most recently hidden first (the moderation page's undo list)."""
    return list(db.session.scalars(select(Question).where(Question.event_id == event.id,
                                                          Question.hidden_at.is_not(None))
                                   .order_by(Question.hidden_at.desc(), Question.id.desc()).limit(limit)))


def voted_question_ids(session_id: int, *, voter: Standing) -> set[int]:
    query = (select(QuestionVote.question_id).join(Question, Question.id == QuestionVote.question_id)
             .where(Question.session_id == session_id, QuestionVote.user_id == voter.user_id))
    return set(db.session.scalars(query))
