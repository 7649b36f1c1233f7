"""Public legal pages, their editors, and the page that asks for consent to a new privacy notice."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user, login_required

from conference.core import after_commit
from conference.core.errors import DomainError, error_response
from conference.core.form_posts import save_form
from conference.core.permissions import Permission
from conference.core.security import is_safe_redirect, limit_request_body
from conference.core.signals import account_data
from conference.events.access import event_permission_required, load_event
from conference.events.models import Event
from conference.extensions import db, login_manager
from conference.legal import services
from conference.legal.forms import LEGAL_FORM_MAX_BYTES, ConsentForm, LegalTextsForm
from conference.legal.models import LegalKind, can_edit_legal_texts

bp = Blueprint("legal", __name__)
log = logging.getLogger("conference.legal")

#: Flask-Login's own way of making the request anonymous (what `logout_user` calls) is a private method; where
#: a Flask-Login release lacks it, "not now" is not offered: every page leads to the consent page instead.
_ANONYMISE_REQUEST = getattr(login_manager, "_update_request_context_with_user", None)

#: Open while a logged-in person has not accepted the current privacy notice: the legal pages themselves,
#: the consent page, leaving, the language, the health check and static files.
OPEN_WITHOUT_CONSENT = frozenset({
    "legal.impressum", "legal.privacy", "legal.event_impressum", "legal.event_privacy", "legal.consent",
    "auth.logout", "i18n.set_language", "health.health", "static",
})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    for endpoint in ("legal.manage_site", "legal.manage_event"):
        limit_request_body(endpoint, LEGAL_FORM_MAX_BYTES)
    account_data.connect(services.account_data)
    if _ANONYMISE_REQUEST is None:
        log.error("Flask-Login has no _update_request_context_with_user: people who have not accepted a new privacy "
                  "notice are sent to the consent page on every page ('not now' is not available)")


@bp.before_app_request
def ask_for_consent() -> Any:
    """A browser login that has not accepted the current privacy notice is asked first (see docs/privacy.md).

    The first page after the login (or after a new version) is the consent page. After "not now" every other
    page is served as to a visitor who is not logged in, so no view, present or future, offers an account
    feature meanwhile: pages that need the login lead to the login page, which leads back to the consent page.
    Changes (POST etc.) lead there at once; the JSON API by cookie answers 403. API tokens are not asked:
    programs cannot answer, and the person behind them is asked in the browser."""
    if request.endpoint == "static" or not current_user.is_authenticated or g.get("authenticated_by_token"):
        return None
    pending = services.pending_privacy_notice(current_user.id)
    g.privacy_consent_pending = pending is not None  # the reminder in base.html
    if pending is None or request.endpoint in OPEN_WITHOUT_CONSENT:
        return None
    if request.path.startswith("/api/"):
        return error_response(403, _("Please accept the current privacy notice first."), "privacy_consent_required")
    if request.method in SAFE_METHODS and request.endpoint != "auth.login" \
            and session.get("privacy_asked") == pending and _ANONYMISE_REQUEST is not None:
        g.privacy_pending_user = current_user._get_current_object()  # base.html still shows the name and logout
        _ANONYMISE_REQUEST(None)  # what logout_user does to the request, no more
        return None
    if request.endpoint == "auth.login":
        target = request.args.get("next")
    else:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("legal.consent", next=target if target and is_safe_redirect(target) else None), code=303)


@bp.app_context_processor
def legal_template_helpers() -> dict[str, Any]:
    return {"privacy_consent_required_at_registration": services.consent_required_at_registration}


def _render_page(event: Event | None, kind: LegalKind) -> Any:
    text, is_event_own = services.page_text(event, kind)
    return render_template("legal/page.html", event=event, kind=kind.value, text=text, is_event_own=is_event_own)


@bp.route("/impressum")
def impressum() -> Any:
    return _render_page(None, LegalKind.IMPRESSUM)


@bp.route("/datenschutz")
def privacy() -> Any:
    return _render_page(None, LegalKind.PRIVACY)


@bp.route("/events/<slug>/impressum")
def event_impressum(slug: str) -> Any:
    return _render_page(load_event(slug), LegalKind.IMPRESSUM)


@bp.route("/events/<slug>/datenschutz")
def event_privacy(slug: str) -> Any:
    return _render_page(load_event(slug), LegalKind.PRIVACY)


def _next(target: str | None) -> str:
    return target if target and is_safe_redirect(target) else url_for("events.home")


@bp.route("/datenschutz/zustimmung", methods=["GET", "POST"])
@login_required
def consent() -> Any:
    notice = services.current_privacy_notice()
    form = ConsentForm(next=request.args.get("next", ""))  # the accepted version comes from the posted page only
    if notice is None or services.pending_privacy_notice(current_user.id) is None:
        return redirect(_next(form.next.data), code=303)
    if not form.is_submitted():
        form.notice_id.data = notice.id
    if form.validate_on_submit():
        try:
            services.accept_privacy_notice(current_user, notice_id=form.notice_id.data or 0)
        except DomainError as error:
            db.session.rollback()
            flash(error.message, "error")
            return redirect(url_for("legal.consent", next=form.next.data or None), code=303)
        after_commit.commit()
        session.pop("privacy_asked", None)
        flash(_("Thank you. You can use your account again."), "success")
        return redirect(_next(form.next.data), code=303)
    session["privacy_asked"] = notice.id  # asked once per login; public pages stay readable after "not now"
    status = 400 if form.is_submitted() else 200
    return render_template("legal/consent.html", notice=notice, form=form,
                           next=_next(form.next.data)), status


def _manage(event: Event | None, endpoint: str, **values: Any) -> Any:
    form = LegalTextsForm()
    if not form.is_submitted():
        for kind in LegalKind:
            text = services.current_text(event, kind)
            getattr(form, kind.value).data = text.body if text is not None else ""
    elif form.validate():
        done = save_form(form, lambda: services.save_texts(event, texts={
            kind: getattr(form, kind.value).data or "" for kind in LegalKind}, actor=current_user),
            field="impressum", then=url_for(endpoint, **values),
            saved=lambda changed: _("The legal pages have been saved.") if changed else _("Nothing has changed."))
        if done:
            return done
    status = 400 if form.is_submitted() else 200
    return render_template("legal/manage.html", event=event, form=form,
                           versions=services.versions(event, LegalKind.PRIVACY)), status


@bp.route("/manage/legal", methods=["GET", "POST"])
@login_required
def manage_site() -> Any:
    if not can_edit_legal_texts(current_user, None):
        abort(403)
    return _manage(None, "legal.manage_site")


@bp.route("/manage/events/<slug>/legal", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def manage_event(event: Event) -> Any:
    return _manage(event, "legal.manage_event", slug=event.slug)
