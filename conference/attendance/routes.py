"""Attendance pages: the organisers' dashboard with its exports and certificates, a person's own record and
certificate, and the public page that checks a certificate."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from conference.attendance import certificates, services
from conference.attendance.collector import collector
from conference.attendance.jobs import bulk_path, bulk_state, register_jobs, start_bulk
from conference.core import after_commit, native
from conference.core.errors import DomainError, ValidationFailed
from conference.core.files import attachment_disposition
from conference.core.mail import external_url, send_mail
from conference.core.permissions import Permission
from conference.core.ratelimit import limit_or_429
from conference.core.signals import account_data, account_erasing, slides_downloaded
from conference.events.access import event_permission_required, load_event
from conference.events.models import Event
from conference.extensions import db
from conference.live.broadcast import live_state

bp = Blueprint("attendance", __name__)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    account_data.connect(services.account_data)
    account_erasing.connect(services.erase_account)
    slides_downloaded.connect(_count_download)
    register_jobs()


def _count_download(sender: Any, *, presentation_id: int, session_id: int, event_id: int, **kwargs: Any) -> None:
    collector(sender).count_download(presentation_id, session_id, event_id)


def _csv(rows: Iterable[Iterable[Any]], header: Iterable[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for index, row in enumerate(rows):
        writer.writerow(row)
        if index % 500 == 499:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_response(chunks: Iterator[str], filename: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = attachment_disposition(filename)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- organisers -------------------------------------------------------------------------------------------

@bp.route("/manage/events/<slug>/attendance")
@event_permission_required(Permission.MANAGE_EVENT)
def dashboard(event: Event) -> Any:
    return _dashboard(event)


def _dashboard(event: Event, status: int = 200) -> Any:
    rooms = services.live_rooms(event, live_state().registry)
    return render_template("attendance/dashboard.html", event=event, figures=services.event_figures(event),
                           live=rooms, online=services.online_people(rooms),
                           bulk=bulk_state(current_app, event)), status


@bp.route("/manage/events/<slug>/attendance/live.json")
@event_permission_required(Permission.MANAGE_EVENT)
def live(event: Event) -> Any:
    figures = services.event_figures(event)
    rooms = services.live_rooms(event, live_state().registry)
    return jsonify(
        rooms=[{key: room[key] for key in ("room", "title", "online", "people", "more")} for room in rooms],
        online=services.online_people(rooms), registered=figures.registered, attended=figures.attended,
        timeline=[{"at": at.isoformat(), "people": people} for at, people in figures.timeline],
        sessions=[{"id": f.session_id, "title": f.title, "unique_attendees": f.unique_attendees,
                   "peak_concurrent": f.peak_concurrent, "average_minutes": f.average_minutes,
                   "chat_messages": f.chat_messages, "questions": f.questions, "reactions": f.reactions,
                   "slide_downloads": f.slide_downloads} for f in figures.sessions])


@bp.route("/manage/events/<slug>/attendance/sessions.csv")
@event_permission_required(Permission.MANAGE_EVENT)
def sessions_csv(event: Event) -> Any:
    return _csv_response(_csv(services.session_rows(event), services.SESSION_COLUMNS),
                         f"{event.slug}-attendance-sessions.csv")


@bp.route("/manage/events/<slug>/attendance/presence.csv")
@event_permission_required(Permission.MANAGE_EVENT)
def presence_csv(event: Event) -> Any:
    return _csv_response(_csv(services.presence_rows(event), services.PRESENCE_COLUMNS),
                         f"{event.slug}-attendance-minutes.csv")


@bp.route("/manage/events/<slug>/attendance/settings", methods=["POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def settings(event: Event) -> Any:
    raw = request.form.get("certificate_min_minutes", "").strip()
    try:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 5:
            raise ValidationFailed(_("Enter a whole number of minutes."), field="certificate_min_minutes")
        services.set_certificate_threshold(event, minutes=int(raw), actor=current_user)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return _dashboard(event, error.status)
    after_commit.commit()
    flash(_("Saved."), "success")
    return redirect(url_for(".dashboard", slug=event.slug), code=303)


@bp.route("/manage/events/<slug>/attendance/certificates", methods=["POST"])
@event_permission_required(Permission.MANAGE_EVENT)
def generate_certificates(event: Event) -> Any:
    if start_bulk(event, locale=str(get_locale() or "de")):
        after_commit.commit()
        flash(_("The certificates are being generated in the background."), "success")
    else:
        flash(_("The certificates are already being generated."), "info")
    return redirect(url_for(".dashboard", slug=event.slug, _anchor="certificates"), code=303)


@bp.route("/manage/events/<slug>/attendance/certificates.zip")
@event_permission_required(Permission.MANAGE_EVENT)
def certificates_zip(event: Event) -> Any:
    path = bulk_path(current_app, event)
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"{event.slug}-certificates.zip", max_age=0)


# --- attendees --------------------------------------------------------------------------------------------

def _verify_url(code: str) -> str:
    return external_url("attendance.verify", code=code)


@bp.route("/account/attendance")
@login_required
def my_attendance() -> Any:
    records = [services.personal_record(event, current_user.id)
               for event in services.events_attended(current_user.id)]
    return render_template("attendance/mine.html", records=records)


def _own_record(slug: str) -> services.PersonalRecord:
    record = services.personal_record(load_event(slug), current_user.id)
    if not record.total_minutes:
        abort(404)
    return record


@bp.route("/account/attendance/<slug>/certificate.pdf")
@login_required
def my_certificate(slug: str) -> Any:
    record = _own_record(slug)
    certificate = certificates.issue_certificate(record.event, current_user, record=record)
    document = certificates.certificate_document(certificate, record.event, _verify_url(certificate.code))
    after_commit.commit()
    pdf = native.submit(certificates.render_pdf, document)()  # ~60 ms of CPU, off the event loop
    response = send_file(io.BytesIO(pdf), mimetype="application/pdf",
                         as_attachment=True, download_name=document.filename, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/account/attendance/<slug>/certificate/mail", methods=["POST"])
@login_required
def mail_certificate(slug: str) -> Any:
    record = _own_record(slug)
    try:
        certificates.issue_certificate(record.event, current_user, record=record)
        limit_or_429("MAIL_REQUEST_LIMIT_ACCOUNT", current_user.email, reason=_("Too many mails were requested."))
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return render_template("attendance/mine.html", records=[record]), error.status
    link = external_url("attendance.my_certificate", slug=record.event.slug)
    send_mail(to=current_user.email, to_name=current_user.name, event_id=record.event.id,
              subject=_("Your certificate of attendance: %(event)s", event=record.event.title),
              body=_("Hello %(name)s,\n\nyour certificate of attendance for “%(event)s” is ready. Download it "
                     "(after logging in) here:\n%(link)s\n", name=current_user.name, event=record.event.title,
                     link=link))
    after_commit.commit()
    flash(_("We sent you a link to your certificate by mail."), "success")
    return redirect(url_for(".my_attendance"), code=303)


@bp.route("/certificates/<code>")
def verify(code: str) -> Any:
    certificate = certificates.by_code(code)
    if certificate is None:
        return render_template("attendance/verify.html", certificate=None), 404
    event = db.session.get(Event, certificate.event_id)
    return render_template("attendance/verify.html", certificate=certificate, event=event,
                           sessions=certificates.sessions_of(certificate))
