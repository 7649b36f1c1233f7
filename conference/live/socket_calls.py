"""The `socket_event` decorator and the `SocketCall` it hands to every live socket handler: known sender,
one JSON object, room and permission checked, one commit (after-commit broadcasts run then) or a rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property, wraps
from typing import Any

from flask import current_app, request
from flask_babel import gettext as _
from sqlalchemy.exc import OperationalError

from conference.auth.models import User
from conference.core import after_commit, metrics
from conference.core.db import reads_only as db_reads_only
from conference.core.errors import DomainError, NotAllowed, ValidationFailed
from conference.core.ids import require_id
from conference.core.permissions import Permission
from conference.extensions import db
from conference.live import access, broadcast, inputs, rooms
from conference.live.broadcast import LiveState, live_state
from conference.live.state import SocketIdentity

log = logging.getLogger("conference.live")


class LoggedOut(Exception):
    """The account behind a socket is gone or disabled: the socket is closed."""


class SocketCall:
    """One incoming event: who sent it (from the server's own records), its payload and its room.

    The room and the sender's standing in the room's event come from short-lived per-process snapshots,
    so the frequent events (chat:send, join, chat:history) need no query before their own work; chat, Q&A,
    reactions and moderation take these snapshots (`room_info`, `standing`) as their only input. The ORM
    `user` (the account check of handlers without a room) and `room` (announcements) are loaded on demand.
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
        """The sender's standing in the room's event (cached per process; see `access.cached_standing`)."""
        standing = access.cached_standing(self.identity.user_id, self.room_info.event_id, self.state)
        if standing is None or standing.is_disabled:
            raise LoggedOut
        return standing

    def room_of(self, name: str) -> rooms.RoomInfo:
        """For handlers that find their room through an object (a message, a question): the room's snapshot,
        whose event `standing` then refers to."""
        self.info = _room_info(self.state, name)
        return self.info

    def id(self, name: str, *, minimum: int = 1) -> int:
        """The payload's id field `name` (`conference.core.ids`: a number within 1..2^63-1), or a 400 ack."""
        return require_id(self.data.get(name), field=name, minimum=minimum)

    def require(self, permission: Permission) -> None:
        access.require(self.standing, permission)

    def written(self, limit: int) -> tuple[str, str]:
        """The `text` and `client_id` of a chat message or question, once the sender is within the chat rate."""
        text = text_field(self.data, "text", limit)
        client_id = inputs.clean_client_id(self.data.get("client_id"))
        self.rate("chat", self.state.chat_rate)
        return text, client_id

    def rate(self, action: str, limit: tuple[int, int]) -> None:
        store = current_app.extensions["conference_rate_limits"]
        inputs.check_rate(store, f"live:{action}:{self.identity.user_id}", limit)


def fail(code: str, message: str, field: str | None = None) -> dict[str, Any]:
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


def socket_event(*, permission: Permission | None = None, room: bool = False, joined: bool = False,
                 reads_only: bool = False) -> Callable[[Callable[[SocketCall], dict[str, Any]]], Callable[..., Any]]:
    """Wrap a handler: known user only, payload is one JSON object, room resolved and permission checked,
    one commit (after-commit broadcasts run then) or a rollback, and every refusal as an error ack.
    `reads_only`: the handler writes nothing to the database, so its statements run without a transaction
    (`core.db.reads_only`: two round trips fewer; a reconnect storm is thousands of joins and history calls)."""

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
                return fail("unauthenticated", _("Please log in."))
            if len(args) != 1 or not isinstance(args[0], dict):
                return fail("invalid_payload", _("Send one JSON object as the payload."))
            call = SocketCall(sid, identity, state, args[0])
            try:
                if reads_only:
                    db_reads_only(db.session)  # takes a connection: an unreachable database is an error ack
                if room:
                    call.info = _room_info(state, args[0].get("room"))
                    if joined and call.info.name not in identity.rooms:
                        raise NotAllowed(_("Join the room first."), code="not_joined", field="room")
                    standing = call.standing  # a gone or disabled account is refused here
                    rooms.require_released_room(call.info,
                                                may_manage_agenda=standing.may(Permission.MANAGE_AGENDA))
                    if permission is not None:
                        access.require(standing, permission)
                else:
                    call.user  # noqa: B018 - loads and checks the account
                result = handler(call)
                after_commit.commit()
            except LoggedOut:
                db.session.rollback()
                after_commit.discard_deferred()
                broadcast.disconnect([sid])
                return fail("unauthenticated", _("Please log in."))
            except DomainError as error:
                db.session.rollback()
                after_commit.discard_deferred()
                return error.as_dict()
            except OperationalError:
                db.session.rollback()
                after_commit.discard_deferred()
                log.warning("database unavailable during %s", handler.__name__)
                return fail("unavailable", _("The service is temporarily unavailable. Please try again."))
            except Exception:
                db.session.rollback()
                after_commit.discard_deferred()
                log.exception("live handler %s failed", handler.__name__)
                return fail("internal", _("Something went wrong on our side. Please try again."))
            return {"ok": True, **result}

        return wrapper

    return decorator


def text_field(data: dict[str, Any], name: str, limit: int) -> str:
    return inputs.clean_text(data.get(name), field=name, limit=limit)


def report_reason(data: dict[str, Any]) -> str:
    """The optional reason of a report (of a message or a question)."""
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise ValidationFailed(_("The field 'reason' must be text."), field="reason")
    return reason.strip()
