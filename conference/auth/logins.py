"""Who is logged in: server-side login sessions (behind the browser cookie) and API tokens.

Services flush, never commit."""

from __future__ import annotations

import hmac
import secrets
from functools import lru_cache
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, bindparam, select, update

from conference.auth.models import ApiToken, LoginSession, User, hash_secret
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import NotFound
from conference.core.signals import logins_ended
from conference.extensions import db

TOKEN_PREFIX = "cft_"


def _announce_ended(user: User, **ended: str | None) -> None:
    """After the commit: close the sockets of the ended logins (`logins_ended`, relayed to every worker)."""
    after_commit.defer(logins_ended.send, current_app._get_current_object(),  # type: ignore[attr-defined]
                       user_id=user.id, **ended)


def _enabled_user(query: Select[User, int]) -> User | None:
    """The user of the first row of `query` (its first column), if there is one and it is not disabled."""
    row = db.session.execute(query).first()
    if row is None or row[0].is_disabled:
        return None
    user: User = row[0]
    return user


# --- login sessions ---------------------------------------------------------------------------------------


def end_logins(user: User, *, keep_login_token: str | None) -> None:
    """End every login session of `user` but the one of `keep_login_token` (None: all), revoke every API token.

    A password change is for when the old one may be known to someone else; tokens were issued to whoever knew
    it, so they go too. Side effect after the commit: the open sockets of the ended logins and of every token
    are closed (`logins_ended`, relayed to every worker)."""
    keep_hash = hash_secret(keep_login_token) if keep_login_token else None
    now = utcnow()
    ended = update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
    if keep_hash is not None:
        ended = ended.where(LoginSession.token_hash != keep_hash)
    db.session.execute(ended.values(ended_at=now))
    db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                       .values(revoked_at=now))
    _announce_ended(user, keep_login_hash=keep_hash)


def end_login_session_of(user: User, *, login_session_id: int, current_login_token: str | None) -> bool:
    """End one of the user's own login sessions (another person's is not found). True if it was the current one.

    Side effect after the commit: the sockets of that login are closed (`logins_ended`)."""
    row = db.session.get(LoginSession, login_session_id)
    if row is None or row.user_id != user.id or row.ended_at is not None:
        raise NotFound(_("No such login."))
    row.ended_at = utcnow()
    db.session.flush()
    _announce_ended(user, login_hash=row.token_hash)
    return bool(current_login_token) and hmac.compare_digest(row.token_hash, hash_secret(current_login_token or ""))


def active_login_sessions(user: User) -> list[LoginSession]:
    return list(db.session.scalars(
        select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .order_by(LoginSession.created_at.desc(), LoginSession.id.desc()).limit(100)))


def start_login_session(user: User, *, user_agent: str | None) -> str:
    """Create a server-side login session and return its secret token (kept in the signed cookie)."""
    token = secrets.token_urlsafe(32)
    db.session.add(LoginSession(user_id=user.id, token_hash=hash_secret(token), user_agent=(user_agent or "")[:255]))
    db.session.flush()
    return token


def end_login_session(token: str) -> None:
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == hash_secret(token), LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def user_for_login_token(token: str) -> User | None:
    if not token:
        return None
    user = _enabled_user(
        select(User, LoginSession.id)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(LoginSession.token_hash == hash_secret(token), LoginSession.ended_at.is_(None)))
    if user is not None:
        user._login_token = token  # type: ignore[attr-defined]
    return user


# --- API tokens -------------------------------------------------------------------------------------------


def issue_api_token(user: User, *, name: str = "") -> str:
    """Create an API token; the plain token is returned once and only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, name=name[:80], token_hash=hash_secret(token), prefix=token[:10]))
    db.session.flush()
    return token


def revoke_api_token(user: User, *, token_id: int) -> None:
    """Revoke one of the user's own tokens. Another user's token is reported as not found."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    db.session.flush()


def _is_token_shaped(token: str) -> bool:
    """Only strings that could be one of our tokens are looked up."""
    return token.startswith(TOKEN_PREFIX) and len(token) <= 100


def api_token_owner(token: str) -> tuple[int, int] | None:
    """(user id, token id) of an active token of an enabled account, in one query of plain columns.

    Every Socket.IO connection with a token asks this (a reconnect storm is thousands at once), and the
    socket needs only the ids, not a loaded User."""
    if not _is_token_shaped(token):
        return None
    row = db.session.execute(_token_owner_query(), {"token_hash": hash_secret(token)}).first()
    if row is None or row.is_disabled:
        return None
    return row.user_id, row.token_id


@lru_cache(maxsize=1)
def _token_owner_query() -> Any:
    """Built once: constructing the select costs more than running it."""
    token_hash: Any = bindparam("token_hash")
    return (select(User.id.label("user_id"), User.is_disabled, ApiToken.id.label("token_id"))
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)))


def user_for_api_token(token: str) -> User | None:
    if not _is_token_shaped(token):
        return None
    return _enabled_user(
        select(User, ApiToken.id)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_secret(token), ApiToken.revoked_at.is_(None)))
