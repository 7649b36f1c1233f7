"""Work on uploaded PDFs in sandboxed children: active content removed at upload, previews in the job queue.

Both parse untrusted files, so both run in a child of `conference.core.children` (minimal environment,
memory, CPU and file limits, a wall-clock timeout), waited for without holding the event loop, and at most
JOB_WORKERS at once per process: a flood of uploads waits for a slot instead of exhausting the machine.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_babel import gettext as _

from conference.agenda import pagecache
from conference.core import children, jobs, native
from conference.extensions import db, socketio
from conference.presentations.models import Presentation, ThumbnailState
from conference.presentations.storage import ReceivedFile
from conference.presentations.upload_errors import UploadRefused

log = logging.getLogger("conference.presentations.previews")

PREVIEW_JOB = "presentation.preview"


def register_jobs() -> None:
    jobs.register(PREVIEW_JOB, run_preview, on_failure=preview_failed)


# --- active content ---------------------------------------------------------------------------------------


def removed_labels(kinds: list[str]) -> list[str]:
    labels = {
        "javascript": _("JavaScript"),
        "launch": _("actions that start programs (Launch)"),
        "submit_form": _("form submissions (SubmitForm)"),
        "import_data": _("form data imports (ImportData)"),
        "embedded_files": _("embedded files"),
    }
    return [labels.get(kind, kind) for kind in kinds]


def removed_message(kinds: list[str]) -> str | None:
    """What the speaker is told when active content was taken out of their PDF."""
    if not kinds:
        return None
    return _("Active content was removed from your PDF: %(items)s. The cleaned file is the one that is stored "
             "and published.", items=", ".join(removed_labels(kinds)))


def clean_upload(upload: ReceivedFile) -> list[str]:
    """Take active content out of the received PDF (in place: the temporary file keeps its lock); returns
    the kinds removed. `upload.size` and `upload.sha256` then describe the cleaned file, which is what is
    stored, served and archived. A PDF that cannot be opened or checked is refused (`UploadRefused`)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with native.temporary_directory("conference-pdfclean-") as work:
        target = work / "clean.pdf"
        try:
            answer = children.run_child("conference.presentations.pdfclean", [str(upload.temp_path), str(target)],
                                        limits=jobs.settings(app).limits, sleep=socketio.sleep)
        except children.ChildFailed as failure:
            log.warning("PDF check of %s failed: %s", upload.filename, failure)
            raise UploadRefused(_("The PDF file could not be checked for active content (it is too large or too "
                                  "complex). Please export it again and upload it once more."), field="file",
                                code="pdf_unchecked") from None
        refused = answer.get("refused")
        if refused == "encrypted":
            raise UploadRefused(_("The PDF file is password-protected, so it cannot be checked for active "
                                  "content. Please upload it without a password."), field="file",
                                code="pdf_encrypted")
        if refused:
            raise UploadRefused(_("The PDF file could not be read, so it could not be checked for active "
                                  "content. Please export it again (e.g. \"Save as PDF\") and upload it once "
                                  "more."), field="file", code="pdf_unreadable")
        removed = [str(kind) for kind in answer.get("removed", [])]
        if removed:
            native.submit(shutil.copyfile, str(target), str(upload.temp_path))()
            upload.size, upload.sha256 = native.submit(_measure, upload.temp_path)()
    upload.removed = removed
    return removed


def _measure(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while piece := handle.read(1024 * 1024):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


# --- previews ---------------------------------------------------------------------------------------------


def enqueue_preview(presentation: Presentation) -> None:
    jobs.enqueue(PREVIEW_JOB, {"presentation_id": presentation.id}, event_id=presentation.event_id,
                 label=presentation.original_filename)


def run_preview(app: Flask, payload: dict[str, Any]) -> None:
    """Job: render page 1 of the PDF into a PNG in a sandboxed child; the deck's preview state follows."""
    from conference.presentations.services import presentations_dir, thumbnails_dir

    presentation_id = int(payload["presentation_id"])
    presentation = db.session.get(Presentation, presentation_id)
    if presentation is None:
        return  # deleted meanwhile
    source = presentations_dir(app) / presentation.stored_filename
    name = f"{presentation.stored_filename.rsplit('.', 1)[0]}.png"
    db.session.rollback()  # no transaction open while the child works
    try:
        children.run_child("conference.presentations.render", [str(source), str(thumbnails_dir(app) / name)],
                           limits=jobs.settings(app).limits, sleep=socketio.sleep)
    except children.ChildFailed as failure:
        raise jobs.JobFailed(f"preview failed ({failure.reason}): {failure.detail}"[:500]) from None
    presentation = db.session.get(Presentation, presentation_id)
    if presentation is None:
        (thumbnails_dir(app) / name).unlink(missing_ok=True)
        return
    presentation.thumbnail_filename = name
    presentation.thumbnail_state = ThumbnailState.READY
    session_id = presentation.session_id
    db.session.commit()
    pagecache.forget_panels(session_id, app)


def preview_failed(app: Flask, payload: dict[str, Any], error: str) -> None:
    """The preview will not come: the speaker sees "Preview failed" instead of waiting for ever."""
    presentation = db.session.get(Presentation, int(payload["presentation_id"]))
    if presentation is None:
        return
    presentation.thumbnail_state = ThumbnailState.FAILED
    session_id = presentation.session_id
    db.session.commit()
    pagecache.forget_panels(session_id, app)


def render_now(app: Flask, presentation_id: int) -> None:
    """Render right away, outside the queue (commands such as `conference demo`). Never raises."""
    with app.app_context():
        try:
            run_preview(app, {"presentation_id": presentation_id})
        except Exception as error:  # noqa: BLE001 - recorded on the deck
            db.session.rollback()
            log.warning("preview of presentation %s failed: %s", presentation_id, error)
            preview_failed(app, {"presentation_id": presentation_id}, str(error))
        finally:
            db.session.remove()
