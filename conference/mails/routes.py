"""Mail settings on the personal agenda, and the organisers' announcement-by-mail form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from conference.core import after_commit, jobs
from conference.core.errors import DomainError, NotAllowed
from conference.core.permissions import Permission
from conference.core.security import limit_request_body
from conference.core.signals import account_data, account_erasing, attendee_registered
from conference.events.access import event_permission_required, load_event
from conference.events.models import Event
from conference.extensions import db
from conference.mails import services
from conference.mails.models import DEFAULT_REMINDER_MINUTES

bp = Blueprint("mails", __name__)

FORM_MAX_BYTES = 64 * 1024  # the announcement text (20,000 characters, up to 3 bytes each) and the fields


@bp.record_once
def _setup(_state: Any) -> None:
    attendee_registered.connect(services.confirm_registration)
    account_data.connect(services.account_data)
    account_erasing.connect(services.erase_account)
    limit_request_body("mails.mail_settings", 4 * 1024)
    limit_request_body("mails.announcement", FORM_MAX_BYTES)
    jobs.register(services.ANNOUNCEMENT_JOB, services.run_announcement_job)


@bp.route("/events/<slug>/my-agenda/mail-settings", methods=["POST"])
@login_required
def mail_settings(slug: str) -> Any:
    event = load_event(slug)
    if current_user.role_in(event) is None:
        raise NotAllowed(_("Register for the event first."))
    text = request.form.get("reminder_minutes", "").strip() or str(DEFAULT_REMINDER_MINUTES)
    minutes = (int(text) if text.isdigit() and len(text) < 5 else -1) if request.form.get("reminders") == "1" \
        else None  # -1: refused by the service
    # A refusal (an offered time only) is answered by the DomainError handler with its 4xx and message.
    services.set_preferences(event, user=current_user, reminder_minutes=minutes,
                             wants_slides_notice=request.form.get("slides_notice") == "1")
    after_commit.commit()
    flash(_("Your mail settings are saved."), "success")
    return redirect(url_for("agenda.my_agenda", slug=event.slug), code=303)


@bp.route("/manage/events/<slug>/mail/announcement", methods=["GET", "POST"])
@event_permission_required(Permission.SEND_ANNOUNCEMENT)
def announcement(event: Event) -> Any:
    """Write -> preview -> test mail to oneself -> send; the text travels in the form between the steps."""
    subject, body = request.form.get("subject", ""), request.form.get("body", "")
    action = request.form.get("action", "")
    preview = None
    status = 200
    if request.method == "POST":
        try:
            if action == "send":
                services.send_announcement(event, subject=subject, body=body, actor=current_user)
                after_commit.commit()
                flash(_("The announcement is on its way to %(n)d people.",
                        n=services.announcement_recipient_count(event)), "success")
                return redirect(url_for("mails.announcement", slug=event.slug), code=303)
            if action == "test":
                services.send_test_announcement(event, subject=subject, body=body, actor=current_user)
                after_commit.commit()
                flash(_("A test mail is on its way to %(address)s.", address=current_user.email), "success")
            preview = services.check_announcement(subject=subject, body=body)
        except DomainError as error:
            db.session.rollback()
            flash(error.message, "error")
            status = error.status
    return render_template("mails/announcement.html", event=event, subject=subject, body=body, preview=preview,
                           recipients=services.announcement_recipient_count(event),
                           history=services.recent_announcement_mails(event)), status
