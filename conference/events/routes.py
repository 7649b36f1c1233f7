"""Event pages, registration, organiser settings and the events API."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from conference.auth.accounts import find_user_by_email
from conference.core import after_commit
from conference.core.contrast import COLOR
from conference.core.errors import DomainError, NotFound
from conference.core.form_posts import save_form
from conference.core.http_cache import cacheable
from conference.core.permissions import Permission, has_permission
from conference.core.ratelimit import Attempt, Counter, client_address
from conference.core.security import accept_upload, upload_endpoint
from conference.core.signals import account_data, account_erasing, address_verified
from conference.events import branding, services
from conference.events.access import event_permission_required, load_event
from conference.events.forms import BrandingForm, EventRegistrationForm, EventSettingsForm, RoleForm
from conference.events.models import Event, PendingRole, RegistrationMode
from conference.extensions import db

bp = Blueprint("events", __name__)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    address_verified.connect(services.apply_pending_roles)  # roles that waited for a confirmed address
    account_data.connect(services.account_data)
    account_erasing.connect(services.erase_account)
    # The branding form takes a logo's size only from the event's organisers: its CSRF check waits until the
    # view knows the caller (`accept_upload`); everyone else meets the small default limit.
    upload_endpoint("events.manage_branding")


def visible_events() -> list[Event]:
    events = db.session.scalars(select(Event).order_by(Event.start_date.desc())).all()
    return [e for e in events if e.is_published or has_permission(current_user, e, Permission.VIEW_EVENT)]


@bp.route("/")
def home() -> Any:
    events = visible_events()
    if len(events) == 1:
        return redirect(url_for("events.event_page", slug=events[0].slug))
    today = date.today()
    upcoming = sorted((e for e in events if not e.is_past(today)), key=lambda e: e.start_date)
    past = [e for e in events if e.is_past(today)]
    return render_template("events/home.html", upcoming=upcoming, past=past)


@bp.route("/events/<slug>/")
def event_page(slug: str) -> Any:
    event = load_event(slug)
    cacheable(shared=False)  # a 304 while unchanged; the form token keeps it out of shared caches
    role = current_user.role_in(event) if current_user.is_authenticated else None
    return render_template("events/event.html", event=event, role=role, form=EventRegistrationForm(),
                           can_manage=has_permission(current_user, event, Permission.MANAGE_EVENT))


def code_attempt(event: Event) -> Attempt:
    """Wrong registration codes per account and per address (all events). One secret serves every account,
    so a new account would buy new guesses: the address limit refuses the right code too, like the account's."""
    if event.registration_mode != RegistrationMode.CODE or current_user.role_in(event) is not None:
        return Attempt()
    reason = _("Too many wrong registration codes.")
    return Attempt(Counter("EVENT_CODE_FAILURE_LIMIT_ACCOUNT", str(current_user.id), reason=reason),
                   Counter("EVENT_CODE_FAILURE_LIMIT_ADDRESS", client_address(), reason=reason)).begin()


@bp.route("/events/<slug>/register", methods=["POST"])
@login_required
def register_for_event(slug: str) -> Any:
    event = load_event(slug)
    form = EventRegistrationForm()
    form.validate()
    attempt = Attempt()
    try:
        attempt = code_attempt(event)
        services.register_attendee(event, user=current_user, code=form.code.data)
    except DomainError as error:
        db.session.rollback()
        if error.code != "wrong_code":
            attempt.give_back()
        flash(error.message, "error")
        return render_template("events/event.html", event=event, role=None, form=form, can_manage=False), \
            error.status
    attempt.give_back()
    after_commit.commit()
    flash(_("You are registered for %(title)s.", title=event.title), "success")
    return redirect(url_for("events.event_page", slug=event.slug), code=303)


@bp.route("/manage/events/<slug>/", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def manage_event(event: Event) -> Any:
    form = EventSettingsForm(obj=event)
    if form.validate_on_submit():
        changes = {name: getattr(form, name).data for name in (
            "title", "description", "start_date", "end_date", "timezone", "language", "registration_mode",
            "registration_code", "link_visibility", "is_published", "keeps_slides_as_record")}
        changes["registration_code"] = (changes["registration_code"] or "").strip() or None
        done = save_form(form, lambda: services.update_event(event, **changes), field="title",
                         saved=_("The settings have been saved."),
                         then=url_for("events.manage_event", slug=event.slug))
        if done:
            return done
    status = 400 if form.is_submitted() else 200
    return render_template("events/manage.html", event=event, form=form), status


@bp.route("/manage/events/<slug>/branding", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def manage_branding(event: Event) -> Any:
    accept_upload(branding.FORM_MAX_BYTES)  # an organiser of the event: the images' sizes, then CSRF
    form = BrandingForm(obj=event)
    if form.validate_on_submit():
        done = save_form(form, lambda: branding.update_branding(
            event, accent_color=form.accent_color.data, logo=_chosen(form.logo.data),
            remove_logo=bool(form.remove_logo.data), header_image=_chosen(form.header_image.data),
            remove_header_image=bool(form.remove_header_image.data),
            **{name: getattr(form, name).data for name in branding.FOOTER_FIELDS}, actor=current_user),
            field="accent_color", saved=_("The event's look has been saved."),
            then=url_for("events.manage_branding", slug=event.slug))
        if done:
            return done
    status = 400 if form.is_submitted() else 200
    return render_template("events/branding.html", event=event, form=form), status


def _chosen(upload: Any) -> Any:
    """The stream of a file the form carried, or None where the field was left empty."""
    return upload.stream if upload and getattr(upload, "filename", "") else None


@bp.route("/events/<slug>/brand.css")
def brand_styles(slug: str) -> Any:
    """The event's accent colour as custom properties (the CSP allows no inline styles)."""
    event = load_event(slug)
    color = event.accent_color if event.accent_color and COLOR.match(event.accent_color) else None
    css = f":root{{--accent:{color};}}\n" if color else ""
    response = Response(css, mimetype="text/css")
    # Asked for again on every page (a changed colour shows at once), answered with 304 while it is the same.
    response.headers["Cache-Control"] = "no-cache" if event.is_published else "private, no-store"
    response.add_etag()
    return response.make_conditional(request)


@bp.route("/events/<slug>/logo")
def logo(slug: str) -> Any:
    event = load_event(slug)
    return _brand_image(branding.logos_dir(), event.logo_filename, "image/png", _("No logo."))


@bp.route("/events/<slug>/header-image")
def header_image(slug: str) -> Any:
    event = load_event(slug)
    return _brand_image(branding.header_images_dir(), event.header_image_filename, "image/webp",
                        _("No header image."))


def _brand_image(directory: Any, filename: str | None, mimetype: str, missing: str) -> Any:
    """A stored branding image with ETag and Last-Modified (304 while unchanged), sandboxed."""
    path = directory / filename if filename else None
    if path is None or not path.is_file():
        raise NotFound(missing)
    response = send_file(path, mimetype=mimetype, max_age=300, conditional=True)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.route("/manage/events/<slug>/people", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def manage_people(event: Event) -> Any:
    form = RoleForm()
    if form.validate_on_submit():
        user = find_user_by_email(form.email.data or "")
        if user is None:
            form.email.errors.append(_("No account with this e-mail address."))
        else:
            try:
                result = services.set_role(event, user=user, role=form.role.data or "", actor=current_user)
            except DomainError as error:
                db.session.rollback()
                form.role.errors.append(error.message)
            else:
                after_commit.commit()
                role = next((c.label for c in form.role.choices if c.value == form.role.data), form.role.data)
                if isinstance(result, PendingRole):
                    flash(_("%(name)s has not confirmed the e-mail address yet: the role %(role)s takes effect once "
                            "they do.", name=user.name, role=role), "info")
                else:
                    flash(_("%(name)s is now %(role)s.", name=user.name, role=role), "success")
                return redirect(url_for("events.manage_people", slug=event.slug), code=303)
    status = 400 if form.is_submitted() else 200
    return render_template("events/people.html", event=event, form=form, **services.people_overview(event)), status


@bp.route("/api/v1/events")
def api_events() -> Any:
    return jsonify({"events": [services.event_payload(e) for e in visible_events()]})


@bp.route("/api/v1/events/<slug>")
def api_event(slug: str) -> Any:
    return jsonify(services.event_payload(load_event(slug)))
