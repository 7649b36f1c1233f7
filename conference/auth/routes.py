"""Account pages and the token API: transport only, rules live in `services`."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from conference.auth import privacy, services
from conference.auth.forms import (
    AddressChangeForm,
    ConfirmAddressForm,
    DeleteAccountForm,
    EmptyForm,
    ForgotPasswordForm,
    LoginForm,
    NameForm,
    NewPasswordForm,
    PasswordChangeForm,
    RegistrationForm,
    TokenForm,
)
from conference.auth.models import ApiToken, User, hash_secret
from conference.core import after_commit
from conference.core.api import api_login_required, field, json_body
from conference.core.errors import DomainError, RateLimited
from conference.core.mail import OutboxMessage, link_segments
from conference.core.ratelimit import Attempt, Counter, Limit, client_address, limit_or_429
from conference.core.security import is_safe_redirect
from conference.core.signals import api_token_revoked, login_session_ended
from conference.extensions import db
from conference.legal import services as legal_services
from conference.settings import get_settings

bp = Blueprint("auth", __name__)


def _redirect_next(target: str | None, code: int = 302) -> Response:
    return redirect(target if target and is_safe_redirect(target) else url_for("events.home"), code=code)


def _safe_next(target: str | None) -> str | None:
    return target if target and is_safe_redirect(target) else None


def _locale() -> str:
    return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])


def _check_login_rate(email: str) -> tuple[Attempt, Counter]:
    """Count a login try as a failure of the account before its password is checked (see `Attempt`).

    Only failures count, keyed by account and by client address, so the colleagues behind one company address
    all get in. An account with `LOGIN_FAILURE_LIMIT_ACCOUNT` failures refuses every login, the right password
    too, until its window ends. An address with `LOGIN_FAILURE_LIMIT_ADDRESS` failures gets no second guess at
    any account: an account that already failed from there is refused, every other account is checked as
    usual. Returns the attempt (give it back on success) and the address's failure counter (hit it on failure).
    X-Forwarded-For counts only via a trusted proxy (`client_address`).
    """
    account, address = services.normalise_email(email), client_address()
    from_address = Counter("LOGIN_FAILURE_LIMIT_ADDRESS", address)
    window = from_address.limit.seconds
    no_second_guess = Limit(1, window) if from_address.is_reached() else Limit(sys.maxsize, window)
    attempt = Attempt(
        Counter("LOGIN_FAILURE_LIMIT_ACCOUNT", account, reason=_("Too many failed logins for this account.")),
        Counter("LOGIN_FAILURE_LIMIT_ADDRESS", address, account, limit=no_second_guess,
                reason=_("Too many failed logins from your network.")),
    )
    return attempt.begin(), from_address


def _new_password_from(form: Any, user: Any, change: Any) -> bool:
    """The step both mailed password links share: `change(user, new_password=...)` with the form's password,
    then a fresh login here. False (with the refusal on the form) when the form or the service refused it."""
    if not form.validate_on_submit():
        return False
    try:
        change(user, new_password=form.new_password.data or "")
    except DomainError as error:
        db.session.rollback()
        form.new_password.errors.append(error.message)
        return False
    _start_browser_login(user)
    return True


def _start_browser_login(user: Any) -> None:
    """Renew the session at login (against fixation) and bind it to a fresh server-side login session."""
    locale = session.get("locale")
    session.clear()
    token = services.start_login_session(user, user_agent=request.user_agent.string)
    user._login_token = token
    after_commit.commit()
    login_user(user)
    if locale:
        session["locale"] = locale


def _end_browser_login() -> None:
    """Forget the login in this browser (the login session row is ended by the caller); keep the language."""
    logout_user()
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    form = RegistrationForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        next_path = _safe_next(form.next.data)
        try:
            limit_or_429("REGISTRATION_LIMIT", client_address(),
                         reason=_("Too many accounts were created from your network."))
            account = services.register_account(email=form.email.data or "", name=form.name.data or "",
                                                password=form.password.data or "", locale=_locale(),
                                                next_path=next_path)
            legal_services.record_registration_consent(account)
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "email").errors.append(error.message)
        else:
            after_commit.commit()
            # The same answer whether the address was new or had an account: nobody learns which it was.
            return redirect(url_for("auth.registration_sent", next=next_path))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/register/sent")
def registration_sent() -> Any:
    return render_template("auth/registration_sent.html", next=_safe_next(request.args.get("next")))


@bp.route("/account/confirm/<token>", methods=["GET", "POST"])
def confirm_address(token: str) -> Any:
    """The mailed link: confirm the address (logged in as the account, or with its password)."""
    user = services.load_address_link(token)
    next_path = _safe_next(request.args.get("next"))
    form = ConfirmAddressForm()
    signed_in = current_user.id if current_user.is_authenticated else None
    if form.validate_on_submit():
        try:
            confirmed = services.confirm_address(user, signed_in_user_id=signed_in, password=form.password.data or "")
        except DomainError as error:
            db.session.rollback()
            form.password.errors.append(error.message)
        else:
            if signed_in == user.id:
                after_commit.commit()
            else:
                _start_browser_login(user)
            flash(_("Thank you: your e-mail address is confirmed.") if confirmed
                  else _("Your e-mail address is already confirmed."), "success")
            return _redirect_next(next_path, 303)
    return _render_confirm(token, user, form, NewPasswordForm(formdata=None), 400 if form.is_submitted() else 200)


@bp.route("/account/confirm/<token>/password", methods=["POST"])
def set_password_by_link(token: str) -> Any:
    """The mailed link: choose a new password (which confirms the address and ends every other access)."""
    user = services.load_address_link(token)
    form = NewPasswordForm()
    if _new_password_from(form, user, services.set_password_by_link):
        flash(_("Your new password is set and your e-mail address is confirmed. Every other login of this "
                "account has been ended."), "success")
        return _redirect_next(_safe_next(request.args.get("next")), 303)
    return _render_confirm(token, user, ConfirmAddressForm(formdata=None), form, 400)


def _render_confirm(token: str, user: User, form: ConfirmAddressForm, password_form: NewPasswordForm,
                    status: int) -> Any:
    signed_in_as_owner = current_user.is_authenticated and current_user.id == user.id
    return render_template("auth/confirm.html", token=token, owner=user, form=form, password_form=password_form,
                           signed_in_as_owner=signed_in_as_owner, next=_safe_next(request.args.get("next"))), status


@bp.route("/account/confirm", methods=["POST"])
@login_required
def resend_confirmation() -> Any:
    EmptyForm()  # CSRF is checked for every POST before we get here
    next_path = _safe_next(request.form.get("next"))
    services.send_confirmation(current_user, locale=_locale(), next_path=next_path)
    after_commit.commit()
    flash(_("We have sent you a new link. Please look in your mailbox."), "success")
    return _redirect_next(next_path or url_for("auth.account"), 303)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        email = form.email.data or ""
        try:
            attempt, from_address = _check_login_rate(email)
        except RateLimited as refusal:
            form.password.errors.append(refusal.message)  # 429 with Retry-After (core.ratelimit)
            return render_template("auth/login.html", form=form), 429
        user = services.authenticate(email, form.password.data or "")
        if user is None:
            from_address.hit()
            form.password.errors.append(_("E-mail or password is not correct."))
        else:
            attempt.give_back()
            _start_browser_login(user)
            flash(_("You are logged in."), "success")
            return _redirect_next(form.next.data)
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    EmptyForm()  # CSRF is checked for every POST before we get here
    token = session.get("_user_id")
    user_id = current_user.id if current_user.is_authenticated else None
    if token:
        services.end_login_session(token)
        after_commit.commit()
        login_session_ended.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                                 user_id=user_id, login_token=token)
    _end_browser_login()
    flash(_("You are logged out."), "info")
    return redirect(url_for("events.home"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Any:
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, current_password=form.current_password.data or "",
                                     new_password=form.new_password.data or "",
                                     keep_login_token=session.get("_user_id"))
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "new_password").errors.append(error.message)
        else:
            after_commit.commit()
            flash(_("Your password has been changed. Every other login of your account has been ended and your "
                    "API tokens have been revoked (they were issued under the old password)."), "success")
            return redirect(url_for("auth.account"))
    status = 400 if form.is_submitted() else 200
    return _render_account(form, status=status)


def _render_account(form: PasswordChangeForm | None = None, token_form: TokenForm | None = None, status: int = 200,
                    **forms: Any) -> Any:
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.created_at.desc())
    ).all()
    current_hash = hash_secret(session.get("_user_id") or "")
    forms.setdefault("name_form", NameForm(formdata=None, account_name=current_user.name))
    forms.setdefault("address_form", AddressChangeForm(formdata=None))
    forms.setdefault("delete_form", DeleteAccountForm(formdata=None))
    return render_template("auth/account.html", form=form or PasswordChangeForm(formdata=None),
                           token_form=token_form or TokenForm(formdata=None), revoke_form=EmptyForm(),
                           tokens=tokens, logins=services.active_login_sessions(current_user),
                           current_login_hash=current_hash, **forms), status


@bp.route("/account/logins/<int:login_session_id>/end", methods=["POST"])
@login_required
def end_login_session(login_session_id: int) -> Any:
    was_current = services.end_login_session_of(current_user, login_session_id=login_session_id,
                                                current_login_token=session.get("_user_id"))
    after_commit.commit()
    if was_current:
        _end_browser_login()
        flash(_("You are logged out."), "info")
        return redirect(url_for("events.home"), code=303)
    flash(_("That login has been ended."), "info")
    return redirect(url_for("auth.account"), code=303)


@bp.route("/account/logout-everywhere", methods=["POST"])
@login_required
def logout_everywhere() -> Any:
    services.end_logins(current_user, keep_login_token=None)
    after_commit.commit()
    _end_browser_login()
    flash(_("You are logged out everywhere, including here, and your API tokens have been revoked."), "info")
    return redirect(url_for("events.home"), code=303)


# --- forgotten password --------------------------------------------------------------------------------------


@bp.route("/login/forgot", methods=["GET", "POST"])
def forgot_password() -> Any:
    """Ask for a reset link. Known or unknown address: the same redirect, nobody learns which it was."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        try:
            # Per client address, visibly: it says something about the asker's network, nothing about accounts.
            limit_or_429("MAIL_REQUEST_LIMIT_ADDRESS", client_address(), reason=_("Too many mails were requested."))
            services.request_password_reset_later(form.email.data or "", locale=_locale())
        except DomainError as error:
            db.session.rollback()
            form.email.errors.append(error.message)
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
    user = services.load_password_reset_link(token)
    form = NewPasswordForm()
    if _new_password_from(form, user, services.reset_password):
        flash(_("Your new password is set. Every other login of your account has been ended and your API "
                "tokens have been revoked."), "success")
        return redirect(url_for("auth.account"), code=303)
    return render_template("auth/reset.html", form=form, owner=user), 400 if form.is_submitted() else 200


# --- name, address, data, deletion -----------------------------------------------------------------------


@bp.route("/account/name", methods=["POST"])
@login_required
def change_name() -> Any:
    form = NameForm()
    if form.validate_on_submit():
        try:
            services.change_name(current_user, name=form.account_name.data or "")
        except DomainError as error:
            db.session.rollback()
            form.account_name.errors.append(error.message)
        else:
            after_commit.commit()
            flash(_("Your name has been changed."), "success")
            return redirect(url_for("auth.account"), code=303)
    return _render_account(status=400, name_form=form)


@bp.route("/account/email", methods=["POST"])
@login_required
def request_address_change() -> Any:
    form = AddressChangeForm()
    if form.validate_on_submit():
        try:
            # Counted before the check, so that nobody tests many addresses for accounts from one network.
            limit_or_429("MAIL_REQUEST_LIMIT_ADDRESS", client_address(), reason=_("Too many mails were requested."))
            services.request_address_change(current_user, new_email=form.new_email.data or "",
                                            password=form.address_password.data or "", locale=_locale())
        except DomainError as error:
            db.session.rollback()
            (form.address_password if error.field == "password" else form.new_email).errors.append(error.message)
            return _render_account(status=error.status, address_form=form)
        after_commit.commit()
        flash(_("We have sent a link to %(email)s. Your address changes when you open it.",
                email=services.normalise_email(form.new_email.data or "")), "success")
        return redirect(url_for("auth.account"), code=303)
    return _render_account(status=400, address_form=form)


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
def confirm_address_change(token: str) -> Any:
    """The link mailed to the new address; the change is made by the button (a POST), not by opening it, so
    that mail scanners that fetch links change nothing."""
    user, new_email = services.load_address_change_link(token)
    form = EmptyForm()
    if request.method == "POST":
        services.change_address(user, new_email=new_email)
        after_commit.commit()
        flash(_("Your e-mail address is now %(email)s.", email=new_email), "success")
        return redirect(url_for("auth.account") if current_user.is_authenticated else url_for("auth.login"),
                        code=303)
    return render_template("auth/confirm_change.html", form=form, owner=user, new_email=new_email)


@bp.route("/account/data.json")
@login_required
def download_data() -> Any:
    """Everything the platform holds about the account, as a JSON file (DSGVO Art. 15 and 20)."""
    body = json.dumps(privacy.export_account_data(current_user), ensure_ascii=False, indent=2)
    response = send_file(io.BytesIO(body.encode()), mimetype="application/json", as_attachment=True,
                         download_name="my-data.json", max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/delete", methods=["POST"])
@login_required
def delete_account() -> Any:
    form = DeleteAccountForm()
    if form.validate_on_submit():
        try:
            privacy.delete_account(current_user, password=form.delete_password.data or "")
        except DomainError as error:
            db.session.rollback()
            form.delete_password.errors.append(error.message)
            return _render_account(status=error.status, delete_form=form)
        after_commit.commit()
        _end_browser_login()
        flash(_("Your account has been deleted."), "info")
        return redirect(url_for("events.home"), code=303)
    return _render_account(status=400, delete_form=form)


@bp.route("/manage/outbox")
@login_required
def site_outbox() -> Any:
    """Account mails (confirmation links) when no mail server is configured: for site administrators."""
    if not current_user.is_admin:
        abort(403)
    messages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.event_id.is_(None))
                                  .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
                                  .limit(500)).all()
    return render_template("auth/outbox.html", messages=[(m, link_segments(m.body)) for m in messages],
                           smtp=bool(get_settings().mail_server))


def _token_issue(account: str) -> Attempt:
    """Tokens issued per account and per address; counted before the password is checked, so that a refusal
    says nothing about the password."""
    reason = _("Too many API tokens were issued.")
    return Attempt(Counter("TOKEN_ISSUE_LIMIT_ACCOUNT", account, reason=reason),
                   Counter("TOKEN_ISSUE_LIMIT_ADDRESS", client_address(), reason=reason))


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token() -> Any:
    form = TokenForm()
    if not form.validate_on_submit():
        flash(_("The token name may have at most 80 characters."), "error")
        return _render_account(token_form=form, status=400)
    try:
        _token_issue(current_user.email).begin()
    except RateLimited as refusal:
        flash(refusal.message, "error")
        return _render_account(token_form=form, status=429)
    token = services.issue_api_token(current_user, name=form.name.data or "")
    after_commit.commit()
    flash(_("Your new API token (shown only once): %(token)s", token=token), "token")
    return redirect(url_for("auth.account")), 303


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Any:
    services.revoke_api_token(current_user, token_id=token_id)
    after_commit.commit()
    api_token_revoked.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                           user_id=current_user.id, token_id=token_id)
    flash(_("The token has been revoked."), "info")
    return redirect(url_for("auth.account")), 303


# --- JSON API ---------------------------------------------------------------------------------


@bp.route("/api/v1/auth/token", methods=["POST"])
def api_issue_token() -> Any:
    data = json_body()
    email = field(data, "email", str, max_length=254)
    password = field(data, "password", str, max_length=1024)
    name = field(data, "name", str, required=False, max_length=80) or "api"
    attempt, from_address = _check_login_rate(email)
    try:
        issue = _token_issue(services.normalise_email(email)).begin()
    except RateLimited:
        attempt.give_back()  # the password was not checked
        raise
    user = services.authenticate(email, password)
    if user is None:
        issue.give_back()
        from_address.hit()
        return jsonify({"ok": False, "error": "invalid_credentials",
                        "message": _("E-mail or password is not correct.")}), 401
    attempt.give_back()
    token = services.issue_api_token(user, name=name)
    after_commit.commit()
    return jsonify({"token": token}), 201


@bp.route("/api/v1/auth/tokens", methods=["GET"])
@api_login_required
def api_list_tokens() -> Any:
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)).all()
    return jsonify({"tokens": [
        {"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
         "revoked": t.revoked_at is not None} for t in tokens
    ]})


@bp.route("/api/v1/auth/tokens/<int:token_id>", methods=["DELETE"])
@api_login_required
def api_revoke_token(token_id: int) -> Any:
    services.revoke_api_token(current_user, token_id=token_id)
    after_commit.commit()
    api_token_revoked.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                           user_id=current_user.id, token_id=token_id)
    return "", 204


@bp.route("/api/v1/me", methods=["GET"])
@api_login_required
def api_me() -> Any:
    return jsonify({"id": current_user.id, "name": current_user.name, "email": current_user.email,
                    "roles": {m.event.slug: m.role for m in current_user.memberships}})
