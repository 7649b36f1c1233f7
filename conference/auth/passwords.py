"""Passwords: changing one, choosing one by a mailed link, and the forgotten-password link.

Services flush, never commit."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from conference.auth.accounts import (
    find_user_by_email,
    hash_password,
    validate_email,
    validate_password,
    verify_password,
)
from conference.auth.links import PASSWORD_RESET_SALT, load_link, over_mail_limit, signed_token
from conference.auth.logins import end_logins
from conference.auth.models import User
from conference.auth.registration import verify_address
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import ValidationFailed
from conference.core.mail import external_url, send_mail
from conference.extensions import db, socketio
from conference.settings import get_settings


def _set_password(user: User, new_password: str) -> None:
    user.password_hash = hash_password(validate_password(new_password))
    db.session.flush()


def change_password(user: User, *, current_password: str, new_password: str, keep_login_token: str | None) -> None:
    """Set a new password. Every other login session ends and every API token is revoked (see `end_logins`)."""
    if not verify_password(user.password_hash, current_password):
        raise ValidationFailed(_("The current password is not correct."), field="current_password")
    _set_password(user, new_password)
    end_logins(user, keep_login_token=keep_login_token)


def set_password_by_link(user: User, *, new_password: str) -> None:
    """The holder of a mailed link chooses a new password; the link proved the address, so it is confirmed.

    Whoever knew the old password (e.g. the stranger who registered the address) is shut out: every login
    session ends and every API token is revoked (see `end_logins`)."""
    _set_password(user, new_password)
    verify_address(user)
    end_logins(user, keep_login_token=None)


def reset_password(user: User, *, new_password: str) -> None:
    """The holder of a reset link sets a new password: as `set_password_by_link` (the address counts as
    confirmed, every login session, API token and socket of the account ends); the link is used up."""
    set_password_by_link(user, new_password=new_password)


# --- the forgotten-password link ------------------------------------------------------------------------


def _reset_state(user: User) -> str:
    return user.password_reset_at.isoformat() if user.password_reset_at else "none"


def password_reset_link(user: User) -> str:
    """A new reset link for `user`; every older one is void from now on (`password_reset_at` is in its state).

    Signed, expiring (`PASSWORD_RESET_MAX_AGE`), single use: the new password changes the state."""
    user.password_reset_at = utcnow()
    db.session.flush()
    return external_url("auth.reset_password",
                        token=signed_token(user, salt=PASSWORD_RESET_SALT, extra=_reset_state(user)))


def load_password_reset_link(token: str) -> User:
    """The account behind a reset link; `LinkInvalid` / `LinkExpired` as for `load_address_link`."""
    return load_link(token, salt=PASSWORD_RESET_SALT, max_age=get_settings().password_reset_max_age,
                     extra=_reset_state)[0]


def request_password_reset(email: str, *, locale: str) -> None:
    """Mail a reset link to `email` if an enabled account has it; answer alike either way (no enumeration).

    Every well-formed address counts against `MAIL_REQUEST_LIMIT_ACCOUNT`, known or not, and over the limit
    the mail is skipped without a word: a refusal would tell that the address was asked for before (and a
    flood of requests cannot fill the owner's mailbox). Side effect: at most one mail."""
    email = validate_email(email)
    over_limit = over_mail_limit(email)
    user = find_user_by_email(email)
    if user is None or user.is_disabled or over_limit:
        return
    link = password_reset_link(user)
    with force_locale(user.locale or locale):
        subject = _("Choose a new password")
        body = _(
            "Hello %(name)s,\n\nsomeone (hopefully you) asked to choose a new password for your account. Open "
            "this link to do so:\n\n%(link)s\n\nThe link works once and for %(minutes)d minutes; a newer "
            "request makes it void. Choosing a new password logs your account out everywhere else.\n\nIf you "
            "did not ask for it, ignore this mail: your password stays as it is.\n",
            name=user.name, link=link, minutes=get_settings().password_reset_max_age // 60)
    send_mail(to=user.email, subject=subject, body=body)


_reset_jobs: list[Any] = []


def request_password_reset_later(email: str, *, locale: str) -> None:
    """Check the address's form now; look it up and mail (`request_password_reset`) after the commit, in a
    background task of the configured async mode, so the answer does not wait for it.

    Only a known address costs a link, an UPDATE and a mail; an answer that waited for them took about 17 ms
    longer on SQLite for known addresses than for unknown ones (median, test client), which tells a patient
    stranger who has an account. Side effect after the commit: the background task."""
    email = validate_email(email)
    after_commit.defer(_start_reset_job, current_app._get_current_object(),  # type: ignore[attr-defined]
                       email, locale)


def _start_reset_job(app: Flask, email: str, locale: str) -> None:
    _reset_jobs.append(socketio.start_background_task(_reset_job, app, email, locale))
    del _reset_jobs[:-50]


def _reset_job(app: Flask, email: str, locale: str) -> None:
    with app.app_context():
        try:
            request_password_reset(email, locale=locale)
            after_commit.commit()
        except Exception:  # a background task has nobody to answer: log, never lose the worker
            db.session.rollback()
            app.logger.exception("password reset mail for a requested address failed")
        finally:
            db.session.remove()


def wait_for_reset_jobs(timeout: float = 10.0) -> None:
    """Join the reset tasks started so far (tests and shutdown)."""
    for task in list(_reset_jobs):
        join = getattr(task, "join", None)
        if join is not None:
            join(timeout)
    _reset_jobs.clear()
