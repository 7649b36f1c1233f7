"""Socket.IO handlers for Q&A (ask, list, vote, answer, hide, unhide, report): transport only."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from conference.core.errors import ValidationFailed
from conference.core.permissions import Permission
from conference.live import access, inputs, payloads, qa, rooms
from conference.live.models import QUESTION_TEXT_LIMIT
from conference.live.socket_calls import SocketCall, report_reason, socket_event, text_field


@socket_event(room=True, joined=True, permission=Permission.CHAT)
def on_qa_ask(call: SocketCall) -> dict[str, Any]:
    text = text_field(call.data, "text", QUESTION_TEXT_LIMIT)
    client_id = inputs.clean_client_id(call.data.get("client_id"))
    call.rate("chat", call.state.chat_rate)
    question, _created = qa.ask_question(call.room, author=call.user, text=text, client_id=client_id)
    return {"question": payloads.question_payload(question)}


@socket_event(room=True, permission=Permission.JOIN_LIVE)
def on_qa_list(call: SocketCall) -> dict[str, Any]:
    room = call.room
    access.check_can_join(room, call.user)
    if room.session is None:
        raise ValidationFailed(_("Questions belong to a session."), code="no_qa", field="room")
    voted = qa.voted_question_ids(call.user, room.session)
    questions = qa.questions_for(room.session, include_hidden=call.standing.may(Permission.MODERATE))
    return {"room": room.name, "questions": [payloads.question_payload(q, voted=q.id in voted) for q in questions]}


def _question_room(call: SocketCall) -> tuple[Any, rooms.LiveRoom]:
    question = qa.question_in(call.id("question_id"))
    return question, rooms.resolve_room(question.room)


@socket_event()
def on_qa_vote(call: SocketCall) -> dict[str, Any]:
    question, room = _question_room(call)
    call.require(room.event, Permission.CHAT)
    call.rate("action", call.state.action_rate)
    qa.vote_question(question, room, voter=call.user)
    return {"question": payloads.question_payload(question, voted=True)}


@socket_event()
def on_qa_answer(call: SocketCall) -> dict[str, Any]:
    question, room = _question_room(call)
    call.require(room.event, Permission.MODERATE)
    answer = call.data.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise ValidationFailed(_("The field 'answer' must be text."), field="answer")
    qa.answer_question(question, room, actor=call.user, answer=answer)
    return {"question": payloads.question_payload(question)}


@socket_event()
def on_qa_hide(call: SocketCall) -> dict[str, Any]:
    question, room = _question_room(call)
    call.require(room.event, Permission.MODERATE)
    qa.hide_question(question, actor=call.user)
    return {"question": payloads.question_payload(question)}


@socket_event()
def on_qa_unhide(call: SocketCall) -> dict[str, Any]:
    question, room = _question_room(call)
    call.require(room.event, Permission.MODERATE)
    qa.restore_question(question, actor=call.user)
    return {"question": payloads.question_payload(question)}


@socket_event()
def on_qa_report(call: SocketCall) -> dict[str, Any]:
    question, room = _question_room(call)
    access.check_can_join(room, call.user)
    reason = report_reason(call.data)
    call.rate("report", call.state.action_rate)
    report = qa.report_question(question, reporter=call.user, reason=reason)
    return {"report_id": report.id}
