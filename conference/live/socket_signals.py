"""The live layer's reactions to other domains' signals (logout, revoked tokens, role changes, agenda releases)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from conference.auth.models import hash_secret
from conference.core.permissions import Permission
from conference.events.models import Event
from conference.extensions import db
from conference.live import access, broadcast
from conference.live.broadcast import built_live_state
from conference.live.state import SocketIdentity

# These run in the process that handled the change. With several worker processes they must be relayed
# through the message queue; every receiver below only needs the signal's keyword arguments. Each acts on the
# process's live state only if it has one (`built_live_state`): a CLI command never starts the live layer.

def on_login_session_ended(sender: Flask, *, login_token: str | None = None, **kwargs: Any) -> None:
    state = built_live_state(sender)
    if not login_token or state is None:
        return
    sids = state.registry.matching(lambda i: i.login_token == login_token)
    broadcast.disconnect(sids)


def on_api_token_revoked(sender: Flask, *, token_id: int | None = None, **kwargs: Any) -> None:
    state = built_live_state(sender)
    if token_id is None or state is None:
        return
    sids = state.registry.matching(lambda i: i.token_id == token_id)
    broadcast.disconnect(sids)


def on_logins_ended(sender: Flask, *, user_id: int, login_hash: str | None = None,
                    keep_login_hash: str | None = None, **kwargs: Any) -> None:
    """Close the sockets of ended logins: one login (`login_hash`), or all but `keep_login_hash` and every token's.

    Each socket keeps the login token it connected with; ended logins are known here only by their hashes."""
    state = built_live_state(sender)
    if state is None:
        return
    registry = state.registry

    def ended(identity: SocketIdentity) -> bool:
        own_hash = hash_secret(identity.login_token) if identity.login_token else None
        if login_hash is not None:
            return own_hash == login_hash
        return own_hash is None or own_hash != keep_login_hash

    broadcast.disconnect([sid for sid in registry.sids_of_user(user_id)
                          if (identity := registry.get(sid)) is not None and ended(identity)])


def on_account_erased(sender: Flask, *, user_id: int, **kwargs: Any) -> None:
    """Forget the cached chat payloads that carry the deleted account's name (history answers reuse them)."""
    state = built_live_state(sender)
    if state is None:
        return
    for message_id in [key for key, payload in list(state.payloads.items()) if payload["author"]["id"] == user_id]:
        state.payloads.pop(message_id, None)
    state.standings.forget(lambda key: key[0] == user_id)


def on_membership_changed(sender: Flask, *, user_id: int, event_id: int, **kwargs: Any) -> None:
    """Re-check an open socket's rooms of that event: gone registration removes, a new role is told.

    The cached standing is dropped first, so the next event of every socket of the person sees the change."""
    state = built_live_state(sender)
    if state is None:
        return
    state.standings.forget(lambda key: key[0] == user_id)
    sids = [sid for sid in state.registry.sids_of_user(user_id)
            if event_id in (state.registry.get(sid) or SocketIdentity(0)).event_ids.values()]
    if not sids:
        return
    standing = access.load_standing(user_id, event_id)  # fresh: the change may not be committed yet
    slug = db.session.scalar(select(Event.slug).where(Event.id == event_id))
    if standing is None or slug is None:
        return
    if not standing.may(Permission.JOIN_LIVE):
        broadcast.remove_user_from_event(event_id, user_id, "not_registered")
        return
    payload = {"event": slug, "role": standing.shown_role, "is_moderator": standing.may(Permission.MODERATE)}
    for sid in sids:
        broadcast.socketio.emit("live:role", payload, to=sid)


def on_agenda_released(sender: Flask, *, event_id: int, **kwargs: Any) -> None:
    if (state := built_live_state(sender)) is not None:
        state.rooms.forget(lambda key: True)  # session times (archive times) may have moved
    slug = db.session.scalar(select(Event.slug).where(Event.id == event_id))
    if slug is None:
        return
    version = kwargs.get("version")
    payload: dict[str, Any] = {"event": slug, "reason": "release"}
    if isinstance(version, int):
        payload["version"] = version
    broadcast.socketio.emit("agenda:changed", payload, to=f"event:{slug}")


def on_session_state_changed(sender: Flask, *, event_id: int, session_id: int, **kwargs: Any) -> None:
    if (state := built_live_state(sender)) is not None:
        state.rooms.forget(lambda key: key == f"session:{session_id}")
    slug = db.session.scalar(select(Event.slug).where(Event.id == event_id))
    if slug is not None:
        broadcast.socketio.emit("agenda:changed", {"event": slug, "reason": "session_state",
                                                   "session_id": session_id}, to=f"event:{slug}")
