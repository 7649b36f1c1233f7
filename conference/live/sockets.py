"""Socket.IO handlers of the live layer (chat, Q&A, presence, moderation, announcements): transport only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property, wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request, session
from flask_babel import gettext as _
from flask_socketio import SocketIO
from socketio.exceptions import ConnectionRefusedError as SocketConnectionRefused
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from conference.auth import services as auth_services
from conference.auth.models import User, hash_secret
from conference.core import after_commit, metrics
from conference.core.errors import DomainError, NotAllowed, ValidationFailed
from conference.core.ids import require_id
from conference.core.permissions import Permission, has_permission
from conference.core.signals import (
    account_erased,
    agenda_released,
    api_token_revoked,
    login_session_ended,
    logins_ended,
    membership_changed,
    session_state_changed,
)
from conference.events.models import Event
from conference.extensions import db
from conference.legal.services import pending_privacy_notice
from conference.live import access, announcements, broadcast, chat, inputs, moderation, payloads, qa, relay, rooms
from conference.live.broadcast import LiveState, live_state
from conference.live.models import CHAT_TEXT_LIMIT, QUESTION_TEXT_LIMIT
from conference.live.state import SocketIdentity
from conference.settings import get_settings

log = logging.getLogger("conference.live")


class LoggedOut(Exception):
    """The account behind a socket is gone or disabled: the socket is closed."""


class SocketCall:
    """One incoming event: who sent it (from the server's own records), its payload and its room.

    The room and the sender's standing in the room's event come from short-lived per-process snapshots,
    so the frequent events (chat:send, join, chat:history) need no query before their own work. The ORM
    `user` and `room` are loaded only by the handlers that use them.
    """

    def __init__(self, sid: str, identity: SocketIdentity, state: LiveState, data: dict[str, Any]) -> None:
        self.sid = sid
        self.identity = identity
        self.state = state
        self.data = data
        self.info: rooms.RoomInfo | None = None

    @cached_property
    def user(self) -> User:
        user = db.session.get(User, self.identity.user_id)
        if user is None or user.is_disabled:
            raise LoggedOut
        return user

    @cached_property
    def room(self) -> rooms.LiveRoom:
        return rooms.live_room(self.room_info)

    @property
    def room_info(self) -> rooms.RoomInfo:
        assert self.info is not None, "the handler was registered without room=True"
        return self.info

    @cached_property
    def standing(self) -> access.Standing:
        """The sender's standing in the room's event (cached per process; see `LiveState.standings`)."""
        user_id, event_id = self.identity.user_id, self.room_info.event_id
        standing = self.state.standings.get((user_id, event_id), lambda: access.load_standing(user_id, event_id))
        if standing is None or standing.is_disabled:
            raise LoggedOut
        return standing  # type: ignore[no-any-return]

    def id(self, name: str, *, minimum: int = 1) -> int:
        """The payload's id field `name` (`conference.core.ids`: a number within 1..2^63-1), or a 400 ack."""
        return require_id(self.data.get(name), field=name, minimum=minimum)

    def require(self, event: Event, permission: Permission) -> None:
        if not has_permission(self.user, event, permission):
            raise NotAllowed(_("You do not have permission to do this."))

    def rate(self, action: str, limit: tuple[int, int]) -> None:
        store = current_app.extensions["conference_rate_limits"]
        inputs.check_rate(store, f"live:{action}:{self.identity.user_id}", limit)


def _fail(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body = {"ok": False, "error": code, "message": message}
    if field:
        body["field"] = field
    return body


def _room_info(state: LiveState, name: Any) -> rooms.RoomInfo:
    if not isinstance(name, str):
        return rooms.load_room_info(name)  # raises the right error
    info = state.rooms.get(name, lambda: rooms.load_room_info(name))
    assert info is not None
    return info  # type: ignore[no-any-return]


def socket_event(*, permission: Permission | None = None, room: bool = False,
                 joined: bool = False) -> Callable[[Callable[[SocketCall], dict[str, Any]]], Callable[..., Any]]:
    """Wrap a handler: known user only, payload is one JSON object, room resolved and permission checked,
    one commit (after-commit broadcasts run then) or a rollback, and every refusal as an error ack."""

    def decorator(handler: Callable[[SocketCall], dict[str, Any]]) -> Callable[..., Any]:
        name = handler.__name__.removeprefix("on_")

        @wraps(handler)
        def wrapper(*args: Any) -> dict[str, Any]:
            answer = handle(*args)
            metrics.live_event(name, "ok" if answer.get("ok") else str(answer.get("error", "unknown")))
            return answer

        def handle(*args: Any) -> dict[str, Any]:
            state = live_state()
            sid: str = request.sid  # type: ignore[attr-defined]
            identity = state.registry.get(sid)
            if identity is None:
                return _fail("unauthenticated", _("Please log in."))
            if len(args) != 1 or not isinstance(args[0], dict):
                return _fail("invalid_payload", _("Send one JSON object as the payload."))
            call = SocketCall(sid, identity, state, args[0])
            try:
                if room:
                    call.info = _room_info(state, args[0].get("room"))
                    if joined and call.info.name not in identity.rooms:
                        raise NotAllowed(_("Join the room first."), code="not_joined", field="room")
                    standing = call.standing  # a gone or disabled account is refused here
                    rooms.require_released_room(call.info,
                                                   may_manage_agenda=standing.may(Permission.MANAGE_AGENDA))
                    if permission is not None and not standing.may(permission):
                        raise NotAllowed(_("You do not have permission to do this."))
                else:
                    call.user  # noqa: B018 - loads and checks the account
                result = handler(call)
                after_commit.commit()
            except LoggedOut:
                db.session.rollback()
                after_commit.discard_deferred()
                broadcast.disconnect([sid])
                return _fail("unauthenticated", _("Please log in."))
            except DomainError as error:
                db.session.rollback()
                after_commit.discard_deferred()
                return error.as_dict()
            except OperationalError:
                db.session.rollback()
                after_commit.discard_deferred()
                log.warning("database unavailable during %s", handler.__name__)
                return _fail("unavailable", _("The service is temporarily unavailable. Please try again."))
            except Exception:
                db.session.rollback()
                after_commit.discard_deferred()
                log.exception("live handler %s failed", handler.__name__)
                return _fail("internal", _("Something went wrong on our side. Please try again."))
            return {"ok": True, **result}

        return wrapper

    return decorator


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
        owner = auth_services.api_token_owner(token)
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
    user = auth_services.user_for_login_token(login_token)
    if user is None or pending_privacy_notice(user.id) is not None:
        return None  # a browser login that has not accepted the current privacy notice may not chat yet
    return SocketIdentity(user_id=user.id, login_token=login_token)


def on_connect(auth: Any = None) -> None:
    state = live_state()
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
    return _fail("unknown_event", _("Unknown event."))


# --- rooms ---------------------------------------------------------------------------------------------------

@socket_event(room=True)
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
    announcement = announcements.latest_announcement(info)
    if announcement is not None:
        reply["announcement"] = payloads.announcement_payload(announcement, info.event_slug)
    return reply


@socket_event(room=True)
def on_leave(call: SocketCall) -> dict[str, Any]:
    broadcast.leave_room(call.sid, call.room_info.name)
    return {"room": call.room_info.name}


@socket_event(room=True, joined=True, permission=Permission.SEE_PARTICIPANTS)
def on_presence_who(call: SocketCall) -> dict[str, Any]:
    room = call.room
    ids = call.state.registry.online_users(room.name)
    users: Any = db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.name)) if ids else []
    return {"room": room.name, "users": [{"id": u.id, "name": u.name,
                                          "role": access.shown_role(u, room.event)} for u in users]}


# --- chat ----------------------------------------------------------------------------------------------------

@socket_event(room=True, joined=True, permission=Permission.CHAT)
def on_chat_send(call: SocketCall) -> dict[str, Any]:
    text = _text(call.data, "text", CHAT_TEXT_LIMIT)
    client_id = inputs.clean_client_id(call.data.get("client_id"))
    call.rate("chat", call.state.chat_rate)
    message, _created = chat.post_message(call.room_info, author=call.standing, text=text, client_id=client_id)
    return {"message": message}


@socket_event(room=True, permission=Permission.JOIN_LIVE)
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
    room = rooms.resolve_room(message.room)
    call.require(room.event, Permission.MODERATE)
    chat.delete_message(message, actor=call.user)
    return {"id": message.id}


@socket_event()
def on_chat_report(call: SocketCall) -> dict[str, Any]:
    message = chat.message_in_event(call.id("message_id"))
    room = rooms.resolve_room(message.room)
    access.check_can_join(room, call.user)
    reason = _reason(call.data)
    call.rate("report", call.state.action_rate)
    report = chat.report_message(message, reporter=call.user, reason=reason)
    return {"report_id": report.id}


# --- moderation ------------------------------------------------------------------------------------------

def _sanction(call: SocketCall, kind: str) -> dict[str, Any]:
    room = call.room
    target = moderation.user_in_event(room.event, call.id("user_id"))
    minutes = call.data.get("minutes")
    if minutes is not None:
        minutes = inputs.clean_number(minutes, field="minutes")
    moderation.sanction_user(room.event, user=target, kind=kind, minutes=minutes, actor=call.user)
    return {"user_id": target.id, "kind": kind}


@socket_event(room=True, permission=Permission.MODERATE)
def on_mod_mute(call: SocketCall) -> dict[str, Any]:
    return _sanction(call, "mute")


@socket_event(room=True, permission=Permission.MODERATE)
def on_mod_ban(call: SocketCall) -> dict[str, Any]:
    return _sanction(call, "ban")


@socket_event(room=True, permission=Permission.MODERATE)
def on_mod_slow_mode(call: SocketCall) -> dict[str, Any]:
    seconds = inputs.clean_number(call.data.get("seconds"), field="seconds")
    moderation.set_slow_mode(call.room, seconds=seconds, actor=call.user)
    return {"room": call.room.name, "slow_mode_seconds": seconds}


# --- Q&A ---------------------------------------------------------------------------------------------------

@socket_event(room=True, joined=True, permission=Permission.CHAT)
def on_qa_ask(call: SocketCall) -> dict[str, Any]:
    text = _text(call.data, "text", QUESTION_TEXT_LIMIT)
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
    reason = _reason(call.data)
    call.rate("report", call.state.action_rate)
    report = qa.report_question(question, reporter=call.user, reason=reason)
    return {"report_id": report.id}


# --- reactions and announcements --------------------------------------------------------------------

@socket_event(room=True, joined=True, permission=Permission.CHAT)
def on_react(call: SocketCall) -> dict[str, Any]:
    room = call.room
    reaction = call.data.get("reaction")
    if reaction not in inputs.REACTIONS:
        raise ValidationFailed(_("Unknown reaction."), field="reaction")
    access.check_can_write(room, call.user)
    call.rate("action", call.state.action_rate)
    call.state.reactions.touch(room.name, str(reaction))
    return {}


@socket_event()
def on_announce(call: SocketCall) -> dict[str, Any]:
    slug = call.data.get("event")
    if not isinstance(slug, str):
        raise ValidationFailed(_("The field 'event' is required."), field="event")
    room = rooms.resolve_room(f"event:{slug}")
    call.require(room.event, Permission.SEND_ANNOUNCEMENT)
    text = _text(call.data, "text", announcements.ANNOUNCEMENT_LIMIT)
    announcement = announcements.announce(room.event, text=text, actor=call.user)
    return {"announcement": payloads.announcement_payload(announcement, room.event.slug)}


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    return inputs.clean_text(data.get(name), field=name, limit=limit)


def _reason(data: dict[str, Any]) -> str:
    """The optional reason of a report (of a message or a question)."""
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise ValidationFailed(_("The field 'reason' must be text."), field="reason")
    return reason.strip()


# --- reactions to other domains (logout, revoked tokens, role changes, agenda releases) -------------------
# These run in the process that handled the change. With several worker processes they must be relayed
# through the message queue; every receiver below only needs the signal's keyword arguments.

def on_login_session_ended(sender: Flask, *, login_token: str | None = None, **kwargs: Any) -> None:
    if not login_token:
        return
    sids = live_state(sender).registry.matching(lambda i: i.login_token == login_token)
    broadcast.disconnect(sids)


def on_api_token_revoked(sender: Flask, *, token_id: int | None = None, **kwargs: Any) -> None:
    if token_id is None:
        return
    sids = live_state(sender).registry.matching(lambda i: i.token_id == token_id)
    broadcast.disconnect(sids)


def on_logins_ended(sender: Flask, *, user_id: int, login_hash: str | None = None,
                    keep_login_hash: str | None = None, **kwargs: Any) -> None:
    """Close the sockets of ended logins: one login (`login_hash`), or all but `keep_login_hash` and every token's.

    Each socket keeps the login token it connected with; ended logins are known here only by their hashes."""
    registry = live_state(sender).registry

    def ended(identity: SocketIdentity) -> bool:
        own_hash = hash_secret(identity.login_token) if identity.login_token else None
        if login_hash is not None:
            return own_hash == login_hash
        return own_hash is None or own_hash != keep_login_hash

    broadcast.disconnect([sid for sid in registry.sids_of_user(user_id)
                          if (identity := registry.get(sid)) is not None and ended(identity)])


def on_account_erased(sender: Flask, *, user_id: int, **kwargs: Any) -> None:
    """Forget the cached chat payloads that carry the deleted account's name (history answers reuse them)."""
    state = live_state(sender)
    for message_id in [key for key, payload in list(state.payloads.items()) if payload["author"]["id"] == user_id]:
        state.payloads.pop(message_id, None)
    state.standings.forget(lambda key: key[0] == user_id)


def on_membership_changed(sender: Flask, *, user_id: int, event_id: int, **kwargs: Any) -> None:
    """Re-check an open socket's rooms of that event: gone registration removes, a new role is told.

    The cached standing is dropped first, so the next event of every socket of the person sees the change."""
    state = live_state(sender)
    state.standings.forget(lambda key: key[0] == user_id)
    sids = [sid for sid in state.registry.sids_of_user(user_id)
            if event_id in (state.registry.get(sid) or SocketIdentity(0)).event_ids.values()]
    if not sids:
        return
    user, event = db.session.get(User, user_id), db.session.get(Event, event_id)
    if user is None or event is None:
        return
    user.forget_roles()
    if not has_permission(user, event, Permission.JOIN_LIVE):
        broadcast.remove_user_from_event(event_id, user_id, "not_registered")
        return
    payload = {"event": event.slug, "role": access.shown_role(user, event),
               "is_moderator": access.is_moderator(user, event)}
    for sid in sids:
        broadcast.socketio.emit("live:role", payload, to=sid)


def on_agenda_released(sender: Flask, *, event_id: int, **kwargs: Any) -> None:
    live_state(sender).rooms.forget(lambda key: True)  # session times (archive times) may have moved
    slug = db.session.scalar(select(Event.slug).where(Event.id == event_id))
    if slug is None:
        return
    version = kwargs.get("version")
    payload: dict[str, Any] = {"event": slug, "reason": "release"}
    if isinstance(version, int):
        payload["version"] = version
    broadcast.socketio.emit("agenda:changed", payload, to=f"event:{slug}")


def on_session_state_changed(sender: Flask, *, event_id: int, session_id: int, **kwargs: Any) -> None:
    live_state(sender).rooms.forget(lambda key: key == f"session:{session_id}")
    slug = db.session.scalar(select(Event.slug).where(Event.id == event_id))
    if slug is not None:
        broadcast.socketio.emit("agenda:changed", {"event": slug, "reason": "session_state",
                                                   "session_id": session_id}, to=f"event:{slug}")


HANDLERS: dict[str, Callable[..., Any]] = {
    "join": on_join,
    "leave": on_leave,
    "presence:who": on_presence_who,
    "chat:send": on_chat_send,
    "chat:history": on_chat_history,
    "chat:delete": on_chat_delete,
    "chat:report": on_chat_report,
    "mod:mute": on_mod_mute,
    "mod:ban": on_mod_ban,
    "mod:slow_mode": on_mod_slow_mode,
    "qa:ask": on_qa_ask,
    "qa:list": on_qa_list,
    "qa:vote": on_qa_vote,
    "qa:answer": on_qa_answer,
    "qa:hide": on_qa_hide,
    "qa:unhide": on_qa_unhide,
    "qa:report": on_qa_report,
    "react": on_react,
    "announce": on_announce,
}


def register(socketio: SocketIO) -> None:
    """Attach the live layer's handlers to `socketio`; called once by the factory."""
    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", on_disconnect)
    for name, handler in HANDLERS.items():
        socketio.on_event(name, handler)
    socketio.on_event("*", on_unknown)
    login_session_ended.connect(on_login_session_ended)
    api_token_revoked.connect(on_api_token_revoked)
    logins_ended.connect(on_logins_ended)
    account_erased.connect(on_account_erased)
    membership_changed.connect(on_membership_changed)
    agenda_released.connect(on_agenda_released)
    session_state_changed.connect(on_session_state_changed)
    relay.register()  # with several workers, the reactions above reach every worker (conference/live/relay.py)
