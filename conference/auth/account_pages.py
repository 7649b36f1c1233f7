"""The account page: password, logins, name, address, the data download, deletion, API tokens; and the site
outbox. Views of the auth blueprint (`blueprint.bp`), transport only."""

from __future__ import annotations

import io
import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from conference.auth import accounts, logins, passwords, privacy, registration
from conference.auth.blueprint import (
    bp,
    current_locale,
    end_browser_login,
    revoke_own_token,
    show_refusal,
    token_issue,
)
from conference.auth.forms import (
    AddressChangeForm,
    DeleteAccountForm,
    EmptyForm,
    NameForm,
    PasswordChangeForm,
    TokenForm,
)
from conference.auth.models import ApiToken, hash_secret
from conference.core import after_commit
from conference.core.errors import DomainError, RateLimited
from conference.core.mail import OutboxMessage, link_segments
from conference.core.ratelimit import client_address, limit_or_429
from conference.extensions import db
from conference.settings import get_settings


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Any:
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            passwords.change_password(current_user, current_password=form.current_password.data or "",
                                      new_password=form.new_password.data or "",
                                      keep_login_token=session.get("_user_id"))
        except DomainError as error:
            show_refusal(getattr(form, error.field or "new_password"), error)
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
                           tokens=tokens, logins=logins.active_login_sessions(current_user),
                           current_login_hash=current_hash, **forms), status


@bp.route("/account/logins/<int:login_session_id>/end", methods=["POST"])
@login_required
def end_login_session(login_session_id: int) -> Any:
    was_current = logins.end_login_session_of(current_user, login_session_id=login_session_id,
                                              current_login_token=session.get("_user_id"))
    after_commit.commit()
    if was_current:
        end_browser_login()
        flash(_("You are logged out."), "info")
        return redirect(url_for("events.home"), code=303)
    flash(_("That login has been ended."), "info")
    return redirect(url_for("auth.account"), code=303)


@bp.route("/account/logout-everywhere", methods=["POST"])
@login_required
def logout_everywhere() -> Any:
    logins.end_logins(current_user, keep_login_token=None)
    after_commit.commit()
    end_browser_login()
    flash(_("You are logged out everywhere, including here, and your API tokens have been revoked."), "info")
    return redirect(url_for("events.home"), code=303)


# --- name, address, data, deletion -----------------------------------------------------------------------


@bp.route("/account/name", methods=["POST"])
@login_required
def change_name() -> Any:
    form = NameForm()
    if form.validate_on_submit():
        try:
            accounts.change_name(current_user, name=form.account_name.data or "")
        except DomainError as error:
            show_refusal(form.account_name, error)
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
            registration.request_address_change(current_user, new_email=form.new_email.data or "",
                                                password=form.address_password.data or "",
                                                locale=current_locale())
        except DomainError as error:
            show_refusal(form.address_password if error.field == "password" else form.new_email, error)
            return _render_account(status=error.status, address_form=form)
        after_commit.commit()
        flash(_("We have sent a link to %(email)s. Your address changes when you open it.",
                email=accounts.normalise_email(form.new_email.data or "")), "success")
        return redirect(url_for("auth.account"), code=303)
    return _render_account(status=400, address_form=form)


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
def confirm_address_change(token: str) -> Any:
    """The link mailed to the new address; the change is made by the button (a POST), not by opening it, so
    that mail scanners that fetch links change nothing."""
    user, new_email = registration.load_address_change_link(token)
    form = EmptyForm()
    if request.method == "POST":
        registration.change_address(user, new_email=new_email)
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
            show_refusal(form.delete_password, error)
            return _render_account(status=error.status, delete_form=form)
        after_commit.commit()
        end_browser_login()
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


# --- API tokens -------------------------------------------------------------------------------------------


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token() -> Any:
    form = TokenForm()
    if not form.validate_on_submit():
        flash(_("The token name may have at most 80 characters."), "error")
        return _render_account(token_form=form, status=400)
    try:
        token_issue(current_user.email).begin()
    except RateLimited as refusal:
        flash(refusal.message, "error")
        return _render_account(token_form=form, status=429)
    token = logins.issue_api_token(current_user, name=form.name.data or "")
    after_commit.commit()
    flash(_("Your new API token (shown only once): %(token)s", token=token), "token")
    return redirect(url_for("auth.account")), 303


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Any:
    revoke_own_token(token_id)
    flash(_("The token has been revoked."), "info")
    return redirect(url_for("auth.account")), 303
