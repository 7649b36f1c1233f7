"""Socket.IO entry of the live layer: connect/disconnect, joining and leaving rooms, presence, and the registration
of every handler (chat: `socket_chat`, Q&A: `socket_qa`, moderation: `socket_moderation`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import request, session
from flask_babel import gettext as _
from flask_socketio import SocketIO
from socketio.exceptions import ConnectionRefusedError as SocketConnectionRefused

from conference.auth import logins
from conference.core import metrics
from conference.core.db import reads_only
from conference.core.permissions import Permission
from conference.core.signals import (
    account_erased,
    agenda_released,
    api_token_revoked,
    login_session_ended,
    logins_ended,
    membership_changed,
    session_state_changed,
)
from conference.extensions import db
from conference.legal.services import pending_privacy_notice
from conference.live import (
    access,
    announcements,
    broadcast,
    chat,
    relay,
    socket_chat,
    socket_moderation,
    socket_qa,
    socket_signals,
)
from conference.live.broadcast import live_state
from conference.live.socket_calls import SocketCall, fail, socket_event
from conference.live.state import SocketIdentity
from conference.settings import get_settings

# --- connecting -------------------------------------------------------------------------------------------

def _origin_allowed(origin: str) -> bool:
    external = get_settings().external_url
    allowed = {_origin_of(external)} if external else {_origin_of(request.host_url)}
    return _origin_of(origin) in allowed


def _origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def _identify(auth: Any) -> SocketIdentity | None:
    """An API token in `auth`, or the browser's login session cookie (from this site's own pages only)."""
    if auth is not None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or len(auth) != 1:
            return None
        owner = logins.api_token_owner(token)
        if owner is None:
            return None
        user_id, token_id = owner
        return SocketIdentity(user_id=user_id, token_id=token_id)
    origin = request.headers.get("Origin")
    if origin is not None and not _origin_allowed(origin):
        return None
    login_token = session.get("_user_id")
    if not isinstance(login_token, str):
        return None
    user = logins.user_for_login_token(login_token)
    if user is None or pending_privacy_notice(user.id) is not None:
        return None  # a browser login that has not accepted the current privacy notice may not chat yet
    return SocketIdentity(user_id=user.id, login_token=login_token)


def on_connect(auth: Any = None) -> None:
    state = live_state()
    reads_only(db.session)  # the identity lookups only read
    identity = _identify(auth)
    db.session.rollback()
    if identity is None:
        raise SocketConnectionRefused("unauthorized")
    if not state.connections.acquire(identity.user_id, state.max_connections_per_user):
        raise SocketConnectionRefused("too_many_connections")
    state.registry.add(request.sid, identity)  # type: ignore[attr-defined]
    metrics.socket_connected()


def on_disconnect(reason: Any = None) -> None:
    state = live_state()
    identity = state.registry.remove(request.sid)  # type: ignore[attr-defined]
    if identity is None:
        return
    metrics.socket_disconnected()
    state.connections.release(identity.user_id)
    for room in identity.rooms:
        if not room.startswith("event:"):
            state.presence.touch(room)


def on_unknown(event: Any, *args: Any) -> dict[str, Any]:
    """Unknown events change nothing; a client that asked for an ack learns why."""
    return fail("unknown_event", _("Unknown event."))


# --- rooms ---------------------------------------------------------------------------------------------------

@socket_event(room=True, reads_only=True)
def on_join(call: SocketCall) -> dict[str, Any]:
    info, standing = call.room_info, call.standing
    call.rate("join", call.state.join_rate)
    access.require_join(standing)
    call.state.room_events[info.name] = info.event_id
    broadcast.enter_room(call.sid, info.event_room, info.event_id)
    broadcast.enter_room(call.sid, info.name, info.event_id)
    reply: dict[str, Any] = {"room": info.name, "online": call.state.registry.online_count(info.name),
                             "user": {"id": standing.user_id, "name": standing.name},
                             "role": standing.shown_role, "is_moderator": standing.may(Permission.MODERATE)}
    if info.has_chat:
        reply["history"] = chat.history_payloads(info, limit=chat.HISTORY_ON_JOIN,
                                                 cache=call.state.payloads)
        reply["slow_mode_seconds"] = info.slow_mode_seconds
        reply["is_closed"] = info.is_closed()
    announcement = announcements.latest_announcement_payload(info, call.state.announcements)
    if announcement is not None:
        reply["announcement"] = announcement
    return reply


@socket_event(room=True)
def on_leave(call: SocketCall) -> dict[str, Any]:
    broadcast.leave_room(call.sid, call.room_info.name)
    return {"room": call.room_info.name}


@socket_event(room=True, joined=True, permission=Permission.SEE_PARTICIPANTS, reads_only=True)
def on_presence_who(call: SocketCall) -> dict[str, Any]:
    info = call.room_info
    people = access.shown_roles(info.event_id, call.state.registry.online_users(info.name))
    return {"room": info.name, "users": [{"id": user_id, "name": name, "role": role}
                                         for user_id, name, role in people]}


HANDLERS: dict[str, Callable[..., Any]] = {
    "join": on_join,
    "leave": on_leave,
    "presence:who": on_presence_who,
    "chat:send": socket_chat.on_chat_send,
    "chat:history": socket_chat.on_chat_history,
    "chat:delete": socket_chat.on_chat_delete,
    "chat:report": socket_chat.on_chat_report,
    "mod:mute": socket_moderation.on_mod_mute,
    "mod:ban": socket_moderation.on_mod_ban,
    "mod:slow_mode": socket_moderation.on_mod_slow_mode,
    "qa:ask": socket_qa.on_qa_ask,
    "qa:list": socket_qa.on_qa_list,
    "qa:vote": socket_qa.on_qa_vote,
    "qa:answer": socket_qa.on_qa_answer,
    "qa:hide": socket_qa.on_qa_hide,
    "qa:unhide": socket_qa.on_qa_unhide,
    "qa:report": socket_qa.on_qa_report,
    "react": socket_chat.on_react,
    "announce": socket_moderation.on_announce,
}


def register(socketio: SocketIO) -> None:
    """Attach the live layer's handlers to `socketio`; called once by the factory."""
    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", on_disconnect)
    for name, handler in HANDLERS.items():
        socketio.on_event(name, handler)
    socketio.on_event("*", on_unknown)
    login_session_ended.connect(socket_signals.on_login_session_ended)
    api_token_revoked.connect(socket_signals.on_api_token_revoked)
    logins_ended.connect(socket_signals.on_logins_ended)
    account_erased.connect(socket_signals.on_account_erased)
    membership_changed.connect(socket_signals.on_membership_changed)
    agenda_released.connect(socket_signals.on_agenda_released)
    session_state_changed.connect(socket_signals.on_session_state_changed)
    relay.register()  # with several workers, the reactions above reach every worker (conference/live/relay.py)
