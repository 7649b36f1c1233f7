"""The background jobs page: an event's queued, running and failed jobs for its organisers; all for admins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from conference.core import jobs
from conference.core.permissions import Permission
from conference.events.access import event_permission_required
from conference.events.models import Event

bp = Blueprint("jobs", __name__)


@bp.route("/manage/events/<slug>/jobs")
@event_permission_required(Permission.MANAGE_EVENT)
def event_jobs(event: Event) -> Any:
    return render_template("events/jobs.html", event=event, jobs=jobs.jobs_for(event.id),
                           workers=jobs.settings(_app()).workers)


@bp.route("/manage/jobs")
@login_required
def site_jobs() -> Any:
    """Every event's jobs (and those of none): for site administrators."""
    if not current_user.is_admin:
        abort(403)
    return render_template("events/jobs.html", event=None, jobs=jobs.jobs_for(None),
                           workers=jobs.settings(_app()).workers)


def _app() -> Any:
    from flask import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined]
