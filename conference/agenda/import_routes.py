"""Organiser pages of the schedule import: upload -> preview -> apply (rules in `importing`)."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from conference.agenda.blueprint import bp
from conference.agenda.forms import ActionForm
from conference.agenda.frab_reader import ParsedSchedule, ScheduleFileError, parse_schedule
from conference.agenda.import_store import discard_preview, load_preview, save_preview
from conference.agenda.importing import apply_import, load_state, preview_import
from conference.core import after_commit
from conference.core.errors import DomainError
from conference.core.permissions import Permission
from conference.core.security import accept_upload, upload_endpoint
from conference.events.access import event_permission_required
from conference.events.models import Event
from conference.extensions import db
from conference.settings import get_settings

FORM_OVERHEAD = 64 * 1024  # the multipart envelope and the form's other fields


@bp.record_once
def _setup(_state: Any) -> None:
    # The upload's size is accepted only from an organiser of the event (`accept_upload`), then CSRF is checked.
    upload_endpoint("agenda.manage_import")


def _limit() -> int:
    return get_settings().schedule_import_max_bytes


def _page(event: Event, status: int = 200, **values: Any) -> Any:
    return render_template("agenda/import.html", event=event, form=ActionForm(), limit_mb=_limit() / 1048576,
                           **values), status


@bp.route("/manage/events/<slug>/agenda/import", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_AGENDA)
def manage_import(event: Event) -> Any:
    if request.method == "GET":
        return _page(event)
    accept_upload(_limit() + FORM_OVERHEAD)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(event, 400, problems=[_("Choose a schedule.xml file.")])
    try:
        schedule = parse_schedule(upload.stream.read(_limit() + 1), default_timezone=event.timezone,
                                  max_bytes=_limit())
    except ScheduleFileError as error:
        return _page(event, 400, problems=error.problems)
    remove_missing = request.form.get("remove_missing") == "1"
    result = preview_import(event, schedule, remove_missing=remove_missing)
    token = None
    blocked = result.plan.errors or any(p.severity == "error" for p in result.new_problems)
    if not blocked and result.plan.has_changes:
        token = save_preview(current_app.instance_path, {
            "event_id": event.id, "user_id": current_user.id, "schedule": schedule.to_json(),
            "remove_missing": remove_missing, "fingerprint": load_state(event).fingerprint(),
            "digest": result.plan.digest()})
    return _page(event, 200, schedule=schedule, result=result, token=token, filename=upload.filename)


@bp.route("/manage/events/<slug>/agenda/import/apply", methods=["POST"])
@event_permission_required(Permission.MANAGE_AGENDA)
def manage_import_apply(event: Event) -> Any:
    token = request.form.get("token", "")
    stored = load_preview(current_app.instance_path, token, event_id=event.id, user_id=current_user.id)
    if stored is None:
        return _page(event, 404, problems=[_("This preview has expired or does not exist; upload the file again.")])
    if load_state(event).fingerprint() != stored["fingerprint"]:
        discard_preview(current_app.instance_path, token)
        return _page(event, 409, problems=[_("The working agenda changed after the preview; nothing was imported. "
                                             "Upload the file again to see a new preview.")])
    try:
        result = apply_import(event, ParsedSchedule.from_json(stored["schedule"]),
                              remove_missing=stored["remove_missing"], actor=current_user)
        if result.plan.digest() != stored["digest"]:  # cannot differ on the same state; never apply a surprise
            raise DomainError(_("The import differs from its preview; nothing was imported."))
    except DomainError as error:
        db.session.rollback()
        return _page(event, 409, problems=[error.message])
    after_commit.commit()
    discard_preview(current_app.instance_path, token)
    plan = result.plan
    flash(_("Schedule imported into the working agenda: %(created)d new, %(updated)d updated, %(removed)d removed "
            "or cancelled sessions. Publish a release to show it.", created=plan.count("create"),
            updated=plan.count("update"), removed=plan.count("delete") + plan.count("cancel")), "success")
    return redirect(url_for("agenda.manage_agenda", slug=event.slug), code=303)
