"""Feedback, speakers' figures and the documentation page: transport only."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user, login_required

from conference.agenda.public import released_session
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import DomainError, NotFound, ValidationFailed
from conference.core.form_posts import save_form
from conference.core.permissions import Permission, has_permission
from conference.core.ratelimit import Counter
from conference.core.signals import account_data, account_erasing
from conference.events.access import event_permission_required, load_event, may_see_links
from conference.events.models import Event
from conference.extensions import db
from conference.feedback import documentation, services
from conference.feedback.forms import DocumentationForm, FeedbackForm, SummaryForm
from conference.speakers.services import profile_for_user

bp = Blueprint("feedback", __name__)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    account_data.connect(services.account_data)
    account_erasing.connect(services.erase_account)


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"feedback_open": lambda event, session_id: services.may_give_feedback(event, session_id, current_user),
            "event_after": event_after}


def event_after(event: Event) -> dict[str, Any]:
    """The event page's links after the day: the survey (once the event is over) and the documentation."""
    settings = documentation.documentation_for(event)
    return {"survey_url": settings.survey_url if event.is_past(date.today()) else None,
            "documentation": settings.is_published}


@bp.route("/events/<slug>/sessions/<int:session_id>/feedback", methods=["GET", "POST"])
@login_required
def session_feedback(slug: str, session_id: int) -> Any:
    event = load_event(slug)
    if not has_permission(current_user, event, Permission.JOIN_LIVE):
        abort(403)
    entry = released_session(event, session_id)
    if entry is None:
        raise NotFound(_("No such session."))
    form = FeedbackForm(obj=services.feedback_of(session_id, current_user))
    if form.validate_on_submit():
        saved = Counter("FEEDBACK_LIMIT", str(current_user.id), reason=_("Too much feedback at once."))
        if saved.is_reached():
            saved.refuse()
        try:
            services.give_feedback(event, session_id, user=current_user, rating=form.rating.data,
                                   comment=form.comment.data, shows_name=form.shows_name.data)
        except DomainError as error:
            db.session.rollback()
            getattr(form, error.field or "rating").errors.append(error.message)
            return render_template("feedback/session.html", event=event, entry=entry, form=form), error.status
        after_commit.commit()
        saved.hit()  # counts what was saved: a refused form costs nothing
        flash(_("Thank you for your feedback."), "success")
        return redirect(url_for("agenda.session_page", slug=event.slug, session_id=session_id), code=303)
    status = 400 if form.is_submitted() else 200
    return render_template("feedback/session.html", event=event, entry=entry, form=form,
                           is_open=services.may_give_feedback(event, session_id, current_user)), status


@bp.route("/events/<slug>/speakers/me/feedback")
@login_required
def my_figures(slug: str) -> Any:
    event = load_event(slug)
    profile = profile_for_user(event, current_user)
    if profile is None:
        raise NotFound(_("You have no speaker profile in this event."))
    return render_template("feedback/speaker.html", event=event, **services.speaker_figures(event, profile.id))


@bp.route("/manage/events/<slug>/feedback")
@event_permission_required(Permission.MANAGE_EVENT)
def manage_feedback(event: Event) -> Any:
    return render_template("feedback/manage.html", event=event, sessions=services.organiser_overview(event))


@bp.route("/manage/events/<slug>/documentation", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def manage_documentation(event: Event) -> Any:
    form = DocumentationForm(obj=documentation.documentation_for(event))
    if form.validate_on_submit():
        done = save_form(form, lambda: documentation.update_documentation(event, **{
            name: getattr(form, name).data for name in ("is_published", "survey_url", "shows_registered",
                                                        "shows_attended", "shows_sessions", "shows_questions",
                                                        "shows_slides")}),
            field="survey_url", saved=_("The documentation page settings have been saved."),
            then=url_for("feedback.manage_documentation", slug=event.slug))
        if done:
            return done
    status = 400 if form.is_submitted() else 200
    return render_template("feedback/manage_documentation.html", event=event, form=form,
                           figures=documentation.documentation_figures(event),
                           sessions=documentation.documented_sessions(event, show_links=True),
                           summary_form=SummaryForm()), status


@bp.route("/manage/events/<slug>/documentation/sessions/<int:session_id>", methods=["POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def save_summary(event: Event, session_id: int) -> Any:
    form = SummaryForm()
    if not form.validate_on_submit():
        raise ValidationFailed(" ".join(str(e) for errors in form.errors.values() for e in errors)
                               or _("The form could not be read."))
    documentation.save_summary(event, session_id, text=form.text.data)  # a DomainError: the handler rolls back
    after_commit.commit()
    flash(_("The summary has been saved."), "success")
    return redirect(url_for("feedback.manage_documentation", slug=event.slug, _anchor=f"s{session_id}"), code=303)


@bp.route("/events/<slug>/documentation")
def documentation_page(slug: str) -> Any:
    event = load_event(slug)
    settings = documentation.documentation_for(event)
    preview = has_permission(current_user, event, Permission.MANAGE_EVENT)
    if not settings.is_published and not preview:
        abort(404)
    return render_template("feedback/documentation.html", event=event, settings=settings, preview=preview,
                           figures=documentation.published_figures(event, settings),
                           sessions=documentation.documented_sessions(event, show_links=may_see_links(
                               current_user, event), now=utcnow()))
