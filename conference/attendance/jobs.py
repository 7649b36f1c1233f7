"""Bulk certificate generation as a job of the queue (`conference/core/jobs.py`, kind `attendance.certificates`).

The organiser's button queues one job per event (a second click while one is queued or running does nothing),
so bulk generation counts against JOB_WORKERS with previews and archives, survives a restart and shows on the
jobs page. The job issues or updates every qualifying certificate, renders the PDFs in a native thread (never on
the event loop) into one ZIP per event under UPLOAD_DIR/certificates, written beside and renamed into place, and
records how many and how long in a small JSON file next to it: every worker process sees the same state.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from flask_babel import force_locale
from sqlalchemy import select

from conference.attendance import certificates
from conference.core import jobs, native
from conference.core.jobs import Job, JobFailed, JobStatus
from conference.core.mail import external_url
from conference.events.models import Event
from conference.extensions import db

log = logging.getLogger("conference.attendance")

CERTIFICATES_JOB = "attendance.certificates"


def register_jobs() -> None:
    jobs.register(CERTIFICATES_JOB, run_bulk)


def bulk_path(app: Any, event: Event) -> Path:
    folder = Path(app.config["UPLOAD_DIR"]) / "certificates"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"event-{event.id}.zip"


def _summary_path(zip_path: Path) -> Path:
    return zip_path.with_suffix(".json")


def _latest_job(event: Event) -> Job | None:
    return db.session.scalar(select(Job).where(Job.kind == CERTIFICATES_JOB, Job.event_id == event.id)
                             .order_by(Job.id.desc()).limit(1))


def bulk_state(app: Any, event: Event) -> dict[str, Any]:
    """{"running": bool, "ready": bool, "count": int | None, "seconds": float | None, "error": bool}:
    running while the latest job is queued or running, error when it failed for good."""
    job = _latest_job(event)
    path = bulk_path(app, event)
    try:
        summary = json.loads(_summary_path(path).read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        summary = {}
    return {"running": job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
            "ready": path.is_file(), "count": summary.get("count"), "seconds": summary.get("seconds"),
            "error": job is not None and job.status == JobStatus.FAILED}


def start_bulk(event: Event, *, locale: str) -> bool:
    """Queue the event's bulk generation in the caller's transaction; False if one is queued or running."""
    job = _latest_job(event)
    if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return False
    jobs.enqueue(CERTIFICATES_JOB, {"event_id": event.id, "locale": locale}, event_id=event.id,
                 label=event.title)
    return True


def run_bulk(app: Any, payload: dict[str, Any]) -> None:
    """The job: issue every qualifying certificate (texts in the organiser's language), then render the ZIP."""
    event = db.session.get(Event, payload.get("event_id"))
    if event is None:
        raise JobFailed("the event no longer exists")
    started = time.perf_counter()
    with app.test_request_context(), force_locale(str(payload.get("locale") or "de")):
        issued = certificates.issue_all(event)
        documents = [certificates.certificate_document(
            c, event, external_url("attendance.verify", code=c.code)) for c in issued]
    db.session.commit()
    path = bulk_path(app, event)
    staged = path.with_name(f"{path.stem}.staged.zip")
    count = native.submit(certificates.write_zip, documents, staged)()  # waits cooperatively on the event loop
    seconds = round(time.perf_counter() - started, 2)
    # The summary first, then the ZIP into place: a page that sees the new ZIP also sees its count.
    _summary_path(path).write_text(json.dumps({"count": count, "seconds": seconds}))
    staged.replace(path)
    log.info("certificates for event %s: %s PDFs in %.2f s", event.id, count, seconds)
