"""Slide versions: the upload quota, the next version chosen under the session's lock, deleting a version.

Services flush, never commit. The stored file is moved into place before the commit (the route removes it if
the commit fails, `remove_uncommitted_file`) and removed only after a committed delete.
"""

from __future__ import annotations

import os

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from conference.agenda import pagecache
from conference.agenda.models import ConferenceSession
from conference.auth.models import User
from conference.core import after_commit, metrics
from conference.core.errors import NotAllowed, NotFound, ValidationFailed
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.presentations.models import (
    Presentation,
    ThumbnailState,
    VisibilityMode,
)
from conference.presentations.services import (
    can_manage,
    can_upload,
    can_view,
    file_path,
    max_upload_bytes,
    remove_files,
    thumbnails_dir,
)
from conference.presentations.storage import ReceivedFile, new_stored_name
from conference.presentations.upload_errors import UploadTooLarge
from conference.settings import get_settings


def user_quota(user: User, event: Event) -> int | None:
    """The bytes `user` may store in `event` in all; None for organisers (no quota)."""
    if can_manage(user, event):
        return None
    return get_settings().presentation_user_quota_bytes


def uploaded_bytes(user: User, event: Event) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(Presentation.size_bytes), 0)).where(
        Presentation.event_id == event.id, Presentation.uploaded_by_id == user.id)) or 0)


def remaining_quota(user: User, event: Event) -> int | None:
    """Bytes the user may still upload in `event`; None for organisers (no quota)."""
    quota = user_quota(user, event)
    return None if quota is None else max(0, quota - uploaded_bytes(user, event))


def upload_limit(user: User, event: Event) -> tuple[int, str]:
    """The most bytes one upload of `user` may have now, and what to say when it has more: the file size
    limit, or what is left of the quota when that is less."""
    limit = max_upload_bytes()
    quota = remaining_quota(user, event)
    if quota is not None and quota < limit:
        return quota, _("Your upload quota for this event is used up.")
    return limit, _("The file is larger than %(mb)s MB.", mb=f"{limit / (1024 * 1024):g}")


def _check_quota_of_new_version(user: User, event: Event) -> None:
    """The quota once more, atomically with the insert of the new version (already flushed).

    The check before the body is read only refuses early: parallel uploads all pass it. Here the uploads of
    one person in one event take turns: PostgreSQL locks the person's membership row of the event until the
    commit (`FOR UPDATE`, after which a new statement sees every committed version); on SQLite this
    transaction is already the one writer (`_lock_versions`). The sum then counts every stored version and
    the new one: the loser is refused (413), its row rolled back and its file never moved into place.
    """
    quota = user_quota(user, event)
    if quota is None:
        return
    db.session.execute(select(EventMembership.id).where(EventMembership.event_id == event.id,
                                                        EventMembership.user_id == user.id).with_for_update())
    if uploaded_bytes(user, event) > quota:
        raise UploadTooLarge(_("Your upload quota for this event is used up."))


def _lock_versions(session: ConferenceSession) -> None:
    """Uploads to one session take turns from here to their commit, so each sees the version before it.

    PostgreSQL: the session's row is locked (`FOR NO KEY UPDATE`: it excludes the other uploads, not the
    rows that merely refer to the session, such as chat messages); the next statement sees every committed
    version. SQLite has one writer at a time: a write that changes nothing makes this transaction the writer
    (waiting for another writer's commit up to the busy timeout), and what it reads after that is current.
    A lock that cannot be had is an `OperationalError` (503), never a reason to pick another number.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(ConferenceSession).where(ConferenceSession.id == session.id)
                           .values(updated_at=ConferenceSession.updated_at)  # not even the time changes
                           .execution_options(synchronize_session=False))
    else:
        db.session.execute(select(ConferenceSession.id).where(ConferenceSession.id == session.id)
                           .with_for_update(key_share=True))


def add_presentation(session: ConferenceSession, *, upload: ReceivedFile, actor: User) -> Presentation:
    """Store `upload` as the session's next version: the number is taken under the session's lock
    (`_lock_versions`), the file moved into place, the row flushed. The caller commits, and if that fails
    calls `remove_uncommitted_file`.

    Refused with 413 when the new version would pass the uploader's quota (checked atomically, see
    `_check_quota_of_new_version`). Whatever fails in here leaves nothing behind: the received file and,
    once moved, the stored one are removed. Side effects after the commit: the session page's cached slides
    panel is dropped; a PDF gets its preview job (`presentations.previews`), queued in this transaction.
    """
    try:
        if not can_upload(actor, session):
            raise NotAllowed(_("Only the session's speakers and the organisers may upload slides."))
        if session.is_break:
            raise ValidationFailed(_("Breaks have no slides."), code="no_slides_for_breaks")
        _lock_versions(session)
        presentation = _new_version(session, upload=upload, actor=actor)
        db.session.add(presentation)
        db.session.flush()
        _check_quota_of_new_version(actor, session.event)
    except BaseException:
        upload.discard()
        raise
    placed = file_path(presentation)
    try:
        os.replace(upload.temp_path, placed)
        if presentation.file_type == "pdf":
            from conference.presentations.previews import enqueue_preview

            enqueue_preview(presentation)  # a job in this transaction: it exists exactly when the deck does
    except BaseException:
        placed.unlink(missing_ok=True)
        upload.discard()
        raise
    after_commit.defer(pagecache.forget_panels, session.id)
    after_commit.defer(metrics.upload_stored, "slides", upload.size)
    return presentation


def _new_version(session: ConferenceSession, *, upload: ReceivedFile, actor: User) -> Presentation:
    latest = db.session.scalar(select(Presentation).where(Presentation.session_id == session.id)
                               .order_by(Presentation.version.desc()).limit(1))
    return Presentation(
        event_id=session.event_id, session_id=session.id, version=(latest.version + 1) if latest else 1,
        original_filename=upload.filename, stored_filename=new_stored_name(upload.file_type),
        file_type=upload.file_type, size_bytes=upload.size, sha256=upload.sha256,
        # A fix uploaded after an organiser published or hid the deck keeps that decision.
        visibility_mode=latest.visibility_mode if latest else VisibilityMode.AUTOMATIC,
        thumbnail_state=ThumbnailState.PENDING if upload.file_type == "pdf" else ThumbnailState.NONE,
        uploaded_by_id=actor.id,
    )


def remove_uncommitted_file(presentation: Presentation) -> None:
    """After the commit of `add_presentation` failed (and was rolled back): its file goes too."""
    file_path(presentation).unlink(missing_ok=True)


def delete_presentation(presentation: Presentation, *, actor: User) -> None:
    """Delete one version. Side effects after the commit: its file and preview are removed, the session
    page's cached slides panel is dropped."""
    if not can_upload(actor, presentation.session):
        raise NotFound(_("No such presentation.")) if not can_view(actor, presentation) else \
            NotAllowed(_("Only the session's speakers and the organisers may delete slides."))
    paths = [file_path(presentation)]
    if presentation.thumbnail_filename:
        paths.append(thumbnails_dir() / presentation.thumbnail_filename)
    session_id = presentation.session_id
    db.session.delete(presentation)
    db.session.flush()
    after_commit.defer(remove_files, paths)
    after_commit.defer(pagecache.forget_panels, session_id)
