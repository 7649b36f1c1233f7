"""People pages: registration questions and answers, the organisers' attendee list and exports, the public list."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, send_file, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from conference.core import after_commit
from conference.core.errors import DomainError, NotFound
from conference.core.form_posts import save_form
from conference.core.permissions import Permission, Role
from conference.core.signals import account_data, account_erasing
from conference.events.access import event_permission_required, load_event
from conference.events.models import Event
from conference.events.routes import code_attempt
from conference.extensions import db
from conference.people import exports, services
from conference.people.forms import AnswersForm, QuestionSettingsForm

bp = Blueprint("people", __name__)
ANSWER_FIELDS = ("organisation", "sector", "is_listed")


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    account_data.connect(services.account_data)
    account_erasing.connect(services.erase_account)


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"registration_questions": services.settings_for, "answers_form": answers_form}


def answers_form(event: Event, *, with_answers: bool = True) -> AnswersForm:
    """The answers form for `event`, filled with the current user's answers when they gave some."""
    answer = services.answer_of(event, current_user) if with_answers else None
    form = AnswersForm(obj=answer) if request.method == "GET" else AnswersForm()
    settings = services.settings_for(event)
    form.sector.choices = [SelectChoice("", _("(please choose)"))] + [  # type: ignore[assignment]
        SelectChoice(s, s) for s in settings.sector_list]
    return form


@bp.route("/events/<slug>/registration", methods=["GET", "POST"])
@login_required
def registration(slug: str) -> Any:
    """Register with the event's questions answered, or change one's answers."""
    event = load_event(slug)
    form = answers_form(event)
    is_member = current_user.role_in(event) is not None
    if form.validate_on_submit():
        attempt = code_attempt(event)
        values = {name: getattr(form, name).data for name in ANSWER_FIELDS}
        try:
            if is_member:
                services.save_answers(event, user=current_user, **values)
            else:
                services.register_with_answers(event, user=current_user, code=form.code.data, **values)
        except DomainError as error:
            db.session.rollback()
            if error.code != "wrong_code":
                attempt.give_back()
            getattr(form, error.field or "organisation").errors.append(error.message)
        else:
            attempt.give_back()
            after_commit.commit()
            flash(_("Your details have been saved.") if is_member else
                  _("You are registered for %(title)s.", title=event.title), "success")
            return redirect(url_for("events.event_page", slug=event.slug), code=303)
    status = 400 if form.is_submitted() else 200
    return render_template("people/registration.html", event=event, form=form, is_member=is_member,
                           settings=services.settings_for(event)), status


@bp.route("/manage/events/<slug>/registration-questions", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def manage_questions(event: Event) -> Any:
    form = QuestionSettingsForm(obj=services.settings_for(event))
    if form.validate_on_submit():
        done = save_form(form, lambda: services.update_settings(event, **{name: getattr(form, name).data for name in (
            "asks_organisation", "asks_sector", "sectors", "asks_listing_consent", "has_public_list")}),
            field="sectors", saved=_("The registration questions have been saved."),
            then=url_for("people.manage_questions", slug=event.slug))
        if done:
            return done
    status = 400 if form.is_submitted() else 200
    return render_template("people/questions.html", event=event, form=form), status


def _filters() -> dict[str, str | None]:
    return {"sector": request.args.get("sector", "")[:100] or None, "role": request.args.get("role") or None,
            "search": request.args.get("q", "")[:services.MAX_SEARCH_LENGTH] or None}


@bp.route("/manage/events/<slug>/attendees")
@event_permission_required(Permission.MANAGE_EVENT)
def attendees(event: Event) -> Any:
    filters = _filters()
    return render_template("people/attendees.html", event=event, rows=services.attendee_rows(event, **filters),
                           filters=filters, settings=services.settings_for(event), roles=list(Role),
                           counts=services.sector_counts(event))


@bp.route("/manage/events/<slug>/attendees.csv")
@event_permission_required(Permission.MANAGE_EVENT)
def export_csv(event: Event) -> Any:
    return _download(event, exports.to_csv(services.attendee_rows(event, **_filters()), event.timezone),
                     "text/csv; charset=utf-8", "csv")


@bp.route("/manage/events/<slug>/attendees.xlsx")
@event_permission_required(Permission.MANAGE_EVENT)
def export_xlsx(event: Event) -> Any:
    return _download(event, exports.to_xlsx(services.attendee_rows(event, **_filters()), event.timezone),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")


def _download(event: Event, body: bytes, mimetype: str, extension: str) -> Response:
    response = send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True,
                         download_name=f"{event.slug}-attendees.{extension}", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/events/<slug>/participants")
def participants(slug: str) -> Any:
    event = load_event(slug)
    settings = services.settings_for(event)
    if not (settings.has_public_list and settings.asks_listing_consent):
        raise NotFound(_("This event shows no participants list."))
    return render_template("people/participants.html", event=event,
                           people=services.public_participants(event))
