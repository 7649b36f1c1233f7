"""The auth blueprint and the helpers its login, account and API views share (redirects, rate checks, the
browser's login)."""

from __future__ import annotations

import sys
from typing import Any

from flask import Blueprint, current_app, redirect, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from conference.auth import accounts, logins
from conference.core import after_commit
from conference.core.errors import DomainError
from conference.core.ratelimit import Attempt, Counter, Limit, client_address
from conference.core.security import is_safe_redirect
from conference.core.signals import api_token_revoked
from conference.extensions import db

bp = Blueprint("auth", __name__)


def redirect_next(target: str | None, code: int = 302) -> Response:
    return redirect(target if target and is_safe_redirect(target) else url_for("events.home"), code=code)


def safe_next(target: str | None) -> str | None:
    return target if target and is_safe_redirect(target) else None


def current_locale() -> str:
    return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])


def show_refusal(field: Any, error: DomainError) -> None:
    """A service refused what the form asked for: undo its work and show why at the form's `field`."""
    db.session.rollback()
    field.errors.append(error.message)


def check_login_rate(email: str) -> tuple[Attempt, Counter]:
    """Count a login try as a failure of the account before its password is checked (see `Attempt`).

    Only failures count, keyed by account and by client address, so the colleagues behind one company address
    all get in. An account with `LOGIN_FAILURE_LIMIT_ACCOUNT` failures refuses every login, the right password
    too, until its window ends. An address with `LOGIN_FAILURE_LIMIT_ADDRESS` failures gets no second guess at
    any account: an account that already failed from there is refused, every other account is checked as
    usual. Returns the attempt (give it back on success) and the address's failure counter (hit it on failure).
    X-Forwarded-For counts only via a trusted proxy (`client_address`).
    """
    account, address = accounts.normalise_email(email), client_address()
    from_address = Counter("LOGIN_FAILURE_LIMIT_ADDRESS", address)
    window = from_address.limit.seconds
    no_second_guess = Limit(1, window) if from_address.is_reached() else Limit(sys.maxsize, window)
    attempt = Attempt(
        Counter("LOGIN_FAILURE_LIMIT_ACCOUNT", account, reason=_("Too many failed logins for this account.")),
        Counter("LOGIN_FAILURE_LIMIT_ADDRESS", address, account, limit=no_second_guess,
                reason=_("Too many failed logins from your network.")),
    )
    return attempt.begin(), from_address


def token_issue(account: str) -> Attempt:
    """Tokens issued per account and per address; counted before the password is checked, so that a refusal
    says nothing about the password."""
    reason = _("Too many API tokens were issued.")
    return Attempt(Counter("TOKEN_ISSUE_LIMIT_ACCOUNT", account, reason=reason),
                   Counter("TOKEN_ISSUE_LIMIT_ADDRESS", client_address(), reason=reason))


def revoke_own_token(token_id: int) -> None:
    """Revoke one of the current user's tokens and commit; then its sockets close (`api_token_revoked`)."""
    logins.revoke_api_token(current_user, token_id=token_id)
    after_commit.commit()
    api_token_revoked.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                           user_id=current_user.id, token_id=token_id)


def new_password_from(form: Any, user: Any, change: Any) -> bool:
    """The step both mailed password links share: `change(user, new_password=...)` with the form's password,
    then a fresh login here. False (with the refusal on the form) when the form or the service refused it."""
    if not form.validate_on_submit():
        return False
    try:
        change(user, new_password=form.new_password.data or "")
    except DomainError as error:
        show_refusal(form.new_password, error)
        return False
    start_browser_login(user)
    return True


def start_browser_login(user: Any) -> None:
    """Renew the session at login (against fixation) and bind it to a fresh server-side login session."""
    locale = session.get("locale")
    session.clear()
    token = logins.start_login_session(user, user_agent=request.user_agent.string)
    user._login_token = token
    after_commit.commit()
    login_user(user)
    if locale:
        session["locale"] = locale


def end_browser_login() -> None:
    """Forget the login in this browser (the login session row is ended by the caller); keep the language."""
    logout_user()
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
