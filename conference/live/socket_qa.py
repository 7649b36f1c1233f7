"""Socket.IO handlers for Q&A (ask, list, vote, answer, hide, unhide, report): transport only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _

from conference.core.errors import ValidationFailed
from conference.core.permissions import Permission
from conference.live import access, payloads, qa
from conference.live.models import QUESTION_TEXT_LIMIT, Question
from conference.live.socket_calls import SocketCall, report_reason, socket_event


@socket_event(room=True, joined=True, permission=Permission.CHAT)
def on_qa_ask(call: SocketCall) -> dict[str, Any]:
    text, client_id = call.written(QUESTION_TEXT_LIMIT)
    question, _created = qa.ask_question(call.room_info, author=call.standing, text=text, client_id=client_id)
    return {"question": payloads.question_payload(question)}


@socket_event(room=True, permission=Permission.JOIN_LIVE, reads_only=True)
def on_qa_list(call: SocketCall) -> dict[str, Any]:
    info, standing = call.room_info, call.standing
    access.require_join(standing)
    session_id = qa.require_session(info)
    voted = qa.voted_question_ids(session_id, voter=standing)
    questions = qa.questions_for(session_id, include_hidden=standing.may(Permission.MODERATE))
    return {"room": info.name, "questions": [payloads.question_payload(q, voted=q.id in voted) for q in questions]}


def _question(call: SocketCall) -> Question:
    """The payload's question; its room becomes the call's room (whose event the sender's standing is in)."""
    question = qa.question_in(call.id("question_id"))
    call.room_of(question.room)
    return question


@socket_event()
def on_qa_vote(call: SocketCall) -> dict[str, Any]:
    question = _question(call)
    call.require(Permission.CHAT)
    call.rate("action", call.state.action_rate)
    qa.vote_question(question, call.room_info, voter=call.standing)
    return {"question": payloads.question_payload(question, voted=True)}


@socket_event()
def on_qa_answer(call: SocketCall) -> dict[str, Any]:
    question = _question(call)
    call.require(Permission.MODERATE)
    answer = call.data.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise ValidationFailed(_("The field 'answer' must be text."), field="answer")
    qa.answer_question(question, call.room_info, actor=call.standing, answer=answer)
    return {"question": payloads.question_payload(question)}


def _moderate(call: SocketCall, action: Callable[..., None]) -> dict[str, Any]:
    """Hide or show again: moderators only."""
    question = _question(call)
    call.require(Permission.MODERATE)
    action(question, actor=call.standing)
    return {"question": payloads.question_payload(question)}


@socket_event()
def on_qa_hide(call: SocketCall) -> dict[str, Any]:
    return _moderate(call, qa.hide_question)


@socket_event()
def on_qa_unhide(call: SocketCall) -> dict[str, Any]:
    return _moderate(call, qa.restore_question)


@socket_event()
def on_qa_report(call: SocketCall) -> dict[str, Any]:
    question = _question(call)
    access.require_join(call.standing)
    reason = report_reason(call.data)
    call.rate("report", call.state.action_rate)
    report = qa.report_question(question, reporter=call.standing, reason=reason)
    return {"report_id": report.id}
