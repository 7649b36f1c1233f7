"""Account pages: registration, the mailed address links, login and logout, the forgotten password.

Transport only, rules live in the services (`accounts`, `registration`, `passwords`, `logins`). The account
page (`account_pages`) and the token API (`api`) register their views on the same blueprint.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from conference.auth import account_pages, accounts, api, logins, passwords, registration  # noqa: F401  (their views register on `bp`)
from conference.auth.blueprint import (
    bp,
    check_login_rate,
    current_locale,
    end_browser_login,
    new_password_from,
    redirect_next,
    safe_next,
    show_refusal,
    start_browser_login,
)
from conference.auth.forms import (
    ConfirmAddressForm,
    EmptyForm,
    ForgotPasswordForm,
    LoginForm,
    NewPasswordForm,
    RegistrationForm,
)
from conference.auth.models import User
from conference.core import after_commit
from conference.core.errors import DomainError, RateLimited
from conference.core.ratelimit import client_address, limit_or_429
from conference.core.signals import login_session_ended
from conference.legal import services as legal_services


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    form = RegistrationForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        next_path = safe_next(form.next.data)
        try:
            limit_or_429("REGISTRATION_LIMIT", client_address(),
                         reason=_("Too many accounts were created from your network."))
            account = registration.register_account(email=form.email.data or "", name=form.name.data or "",
                                                    password=form.password.data or "", locale=current_locale(),
                                                    next_path=next_path)
            legal_services.record_registration_consent(account)
        except DomainError as error:
            show_refusal(getattr(form, error.field or "email"), error)
        else:
            after_commit.commit()
            # The same answer whether the address was new or had an account: nobody learns which it was.
            return redirect(url_for("auth.registration_sent", next=next_path))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/register/sent")
def registration_sent() -> Any:
    return render_template("auth/registration_sent.html", next=safe_next(request.args.get("next")))


@bp.route("/account/confirm/<token>", methods=["GET", "POST"])
def confirm_address(token: str) -> Any:
    """The mailed link: confirm the address (logged in as the account, or with its password)."""
    user = registration.load_address_link(token)
    next_path = safe_next(request.args.get("next"))
    form = ConfirmAddressForm()
    signed_in = current_user.id if current_user.is_authenticated else None
    if form.validate_on_submit():
        try:
            confirmed = registration.confirm_address(user, signed_in_user_id=signed_in,
                                                     password=form.password.data or "")
        except DomainError as error:
            show_refusal(form.password, error)
        else:
            if signed_in == user.id:
                after_commit.commit()
            else:
                start_browser_login(user)
            flash(_("Thank you: your e-mail address is confirmed.") if confirmed
                  else _("Your e-mail address is already confirmed."), "success")
            return redirect_next(next_path, 303)
    return _render_confirm(token, user, form, NewPasswordForm(formdata=None), 400 if form.is_submitted() else 200)


@bp.route("/account/confirm/<token>/password", methods=["POST"])
def set_password_by_link(token: str) -> Any:
    """The mailed link: choose a new password (which confirms the address and ends every other access)."""
    user = registration.load_address_link(token)
    form = NewPasswordForm()
    if new_password_from(form, user, passwords.set_password_by_link):
        flash(_("Your new password is set and your e-mail address is confirmed. Every other login of this "
                "account has been ended."), "success")
        return redirect_next(safe_next(request.args.get("next")), 303)
    return _render_confirm(token, user, ConfirmAddressForm(formdata=None), form, 400)


def _render_confirm(token: str, user: User, form: ConfirmAddressForm, password_form: NewPasswordForm,
                    status: int) -> Any:
    signed_in_as_owner = current_user.is_authenticated and current_user.id == user.id
    return render_template("auth/confirm.html", token=token, owner=user, form=form, password_form=password_form,
                           signed_in_as_owner=signed_in_as_owner, next=safe_next(request.args.get("next"))), status


@bp.route("/account/confirm", methods=["POST"])
@login_required
def resend_confirmation() -> Any:
    EmptyForm()  # CSRF is checked for every POST before we get here
    next_path = safe_next(request.form.get("next"))
    registration.send_confirmation(current_user, locale=current_locale(), next_path=next_path)
    after_commit.commit()
    flash(_("We have sent you a new link. Please look in your mailbox."), "success")
    return redirect_next(next_path or url_for("auth.account"), 303)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        email = form.email.data or ""
        try:
            attempt, from_address = check_login_rate(email)
        except RateLimited as refusal:
            form.password.errors.append(refusal.message)  # 429 with Retry-After (core.ratelimit)
            return render_template("auth/login.html", form=form), 429
        user = accounts.authenticate(email, form.password.data or "")
        if user is None:
            from_address.hit()
            form.password.errors.append(_("E-mail or password is not correct."))
        else:
            attempt.give_back()
            start_browser_login(user)
            flash(_("You are logged in."), "success")
            return redirect_next(form.next.data)
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    EmptyForm()  # CSRF is checked for every POST before we get here
    token = session.get("_user_id")
    user_id = current_user.id if current_user.is_authenticated else None
    if token:
        logins.end_login_session(token)
        after_commit.commit()
        login_session_ended.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                                 user_id=user_id, login_token=token)
    end_browser_login()
    flash(_("You are logged out."), "info")
    return redirect(url_for("events.home"))


# --- forgotten password --------------------------------------------------------------------------------------


@bp.route("/login/forgot", methods=["GET", "POST"])
def forgot_password() -> Any:
    """Ask for a reset link. Known or unknown address: the same redirect, nobody learns which it was."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        try:
            # Per client address, visibly: it says something about the asker's network, nothing about accounts.
            limit_or_429("MAIL_REQUEST_LIMIT_ADDRESS", client_address(), reason=_("Too many mails were requested."))
            passwords.request_password_reset_later(form.email.data or "", locale=current_locale())
        except DomainError as error:
            show_refusal(form.email, error)
        else:
            after_commit.commit()
            return redirect(url_for("auth.reset_sent"), code=303)
    status = 400 if form.is_submitted() else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/login/forgot/sent")
def reset_sent() -> Any:
    return render_template("auth/reset_sent.html")


@bp.route("/account/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    """The mailed reset link: choose a new password; every other login of the account ends."""
    user = passwords.load_password_reset_link(token)
    form = NewPasswordForm()
    if new_password_from(form, user, passwords.reset_password):
        flash(_("Your new password is set. Every other login of your account has been ended and your API "
                "tokens have been revoked."), "success")
        return redirect(url_for("auth.account"), code=303)
    return render_template("auth/reset.html", form=form, owner=user), 400 if form.is_submitted() else 200

