"""The data subject's rights: download my data (DSGVO Art. 15/20) and delete my account (Art. 17).

Each domain knows what it holds about an account and answers the `account_data` and `account_erasing`
signals (auth is below the other domains and may not import them); this module assembles the answers."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, select

from conference.auth.accounts import verify_password
from conference.auth.logins import end_logins
from conference.auth.models import ApiToken, LoginSession, User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import ValidationFailed
from conference.core.signals import account_data, account_erased, account_erasing
from conference.extensions import db

EXPORT_FORMAT = 1


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def export_account_data(user: User) -> dict[str, Any]:
    """Everything the platform holds about `user`, as JSON-ready data: the account's own rows here, every
    other domain's sections from its `account_data` receiver. Secrets (password hash, token hashes) are left
    out: they are no information about the person and would only help whoever gets the file."""
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": _when(utcnow()),
        "profile": {"id": user.id, "name": user.name, "email": user.email, "locale": user.locale,
                    "created_at": _when(user.created_at), "email_confirmed_at": _when(user.email_verified_at),
                    "is_admin": user.is_admin},
        "login_sessions": [{"created_at": _when(row.created_at), "ended_at": _when(row.ended_at),
                            "user_agent": row.user_agent} for row in db.session.scalars(
                                select(LoginSession).where(LoginSession.user_id == user.id)
                                .order_by(LoginSession.id))],
        "api_tokens": [{"name": row.name, "starts_with": row.prefix, "created_at": _when(row.created_at),
                        "last_used_at": _when(row.last_used_at), "revoked_at": _when(row.revoked_at)}
                       for row in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                                     .order_by(ApiToken.id))],
    }
    for _receiver, sections in account_data.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                                                  user_id=user.id):
        data.update(sections or {})
    return data


def delete_account(user: User, *, password: str) -> None:
    """Delete the account after its password was given again.

    The row stays, without name, address, password or roles, so that chat messages and questions keep their
    author (shown as "deleted account"); every other domain removes or anonymises its data in the same unit of
    work (`account_erasing`) and may refuse (the last organiser of an event), in which case the caller rolls
    everything back. Every login session and API token ends; their sockets close after the commit."""
    if not verify_password(user.password_hash, password):
        raise ValidationFailed(_("The password is not correct."), field="password")
    account_erasing.send(current_app._get_current_object(), user_id=user.id)  # type: ignore[attr-defined]
    end_logins(user, keep_login_token=None)
    db.session.execute(delete(LoginSession).where(LoginSession.user_id == user.id,
                                                     LoginSession.ended_at.is_not(None)))
    user.name = ""
    user.email = f"deleted-{user.id}@invalid"  # unique and never deliverable; the address is free again
    user.password_hash = "!deleted"  # no password hashes to this
    user.is_disabled = True
    user.is_admin = False
    user.locale = None
    user.email_verified_at = None
    user.password_reset_at = None
    user.deleted_at = utcnow()
    db.session.flush()
    after_commit.defer(account_erased.send, current_app._get_current_object(),  # type: ignore[attr-defined]
                       user_id=user.id)
