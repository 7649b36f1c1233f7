"""Socket.IO handlers for chat (send, history, delete, report) and reactions: transport only."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from conference.core.errors import ValidationFailed
from conference.core.permissions import Permission
from conference.live import access, chat, inputs
from conference.live.models import CHAT_TEXT_LIMIT
from conference.live.socket_calls import SocketCall, report_reason, socket_event


@socket_event(room=True, joined=True, permission=Permission.CHAT)
def on_chat_send(call: SocketCall) -> dict[str, Any]:
    text, client_id = call.written(CHAT_TEXT_LIMIT)
    message, _created = chat.post_message(call.room_info, author=call.standing, text=text, client_id=client_id)
    return {"message": message}


@socket_event(room=True, permission=Permission.JOIN_LIVE, reads_only=True)
def on_chat_history(call: SocketCall) -> dict[str, Any]:
    info = call.room_info
    access.require_join(call.standing)
    after_id = call.data.get("after_id")
    if after_id is not None:
        after_id = call.id("after_id", minimum=0)
    messages = chat.history_payloads(info, after_id=after_id, limit=chat.HISTORY_PAGE + 1,
                                     cache=call.state.payloads)
    has_more = len(messages) > chat.HISTORY_PAGE
    if has_more:
        messages = messages[:chat.HISTORY_PAGE] if after_id is not None else messages[1:]
    reply: dict[str, Any] = {"room": info.name, "messages": messages, "has_more": has_more}
    if after_id is not None:
        # Messages the client may hold that a moderator deleted while it was away (none before the first id).
        reply["deleted"] = chat.deleted_message_ids(info, up_to_id=after_id)
    return reply


@socket_event()
def on_chat_delete(call: SocketCall) -> dict[str, Any]:
    message = chat.message_in_event(call.id("message_id"))
    call.room_of(message.room)
    call.require(Permission.MODERATE)
    chat.delete_message(message, actor=call.standing)
    return {"id": message.id}


@socket_event()
def on_chat_report(call: SocketCall) -> dict[str, Any]:
    message = chat.message_in_event(call.id("message_id"))
    call.room_of(message.room)
    access.require_join(call.standing)
    reason = report_reason(call.data)
    call.rate("report", call.state.action_rate)
    report = chat.report_message(message, reporter=call.standing, reason=reason)
    return {"report_id": report.id}


@socket_event(room=True, joined=True, permission=Permission.CHAT)
def on_react(call: SocketCall) -> dict[str, Any]:
    reaction = call.data.get("reaction")
    if reaction not in inputs.REACTIONS:
        raise ValidationFailed(_("Unknown reaction."), field="reaction")
    access.require_write(call.standing)
    call.rate("action", call.state.action_rate)
    call.state.reactions.touch(call.room_info.name, str(reaction))
    return {}
