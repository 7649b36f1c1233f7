"""Slide rules: who may upload, versions, visibility, deletion, previews, reminders, export links.

Services flush, never commit. Files are moved into place before the commit (and out again if it fails) and
removed after it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from conference.agenda import pagecache
from conference.agenda.models import ConferenceSession, SessionSpeaker
from conference.agenda.public import released_end, released_session
from conference.agenda.schedule import published_schedule
from conference.auth.models import User
from conference.core import after_commit, metrics
from conference.core.db import utcnow
from conference.core.errors import NotAllowed, NotFound, ValidationFailed
from conference.core.mail import external_url, mail_locale, send_mail
from conference.core.permissions import Permission, has_permission
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.presentations.models import (
    Presentation,
    ThumbnailState,
    Visibility,
    VisibilityMode,
)
from conference.presentations.storage import ReceivedFile, UploadTooLarge, new_stored_name
from conference.settings import get_settings
from conference.speakers.models import SpeakerInvitation, SpeakerProfile

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_USER_QUOTA_BYTES = 1024 * 1024 * 1024


# --- storage locations -----------------------------------------------------------------------------------


def presentations_dir(app: Flask | None = None) -> Path:
    return Path(str(get_settings(app).upload_dir)) / "presentations"


def thumbnails_dir(app: Flask | None = None) -> Path:
    return Path(str(get_settings(app).upload_dir)) / "thumbnails"


def ensure_directories(app: Flask) -> None:
    """Create the folders; clear temporary uploads left by a killed worker (no live process holds them)."""
    from conference.presentations.storage import remove_stale_parts

    for directory in (presentations_dir(app), thumbnails_dir(app)):
        directory.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(presentations_dir(app))


def file_path(presentation: Presentation) -> Path:
    return presentations_dir() / presentation.stored_filename


def max_upload_bytes() -> int:
    return get_settings().presentation_max_bytes


# --- permissions -----------------------------------------------------------------------------------------


def is_session_speaker(user: Any, session: ConferenceSession) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(db.session.scalar(
        select(func.count()).select_from(SessionSpeaker)
        .join(SpeakerProfile, SpeakerProfile.id == SessionSpeaker.speaker_id)
        .where(SessionSpeaker.session_id == session.id, SpeakerProfile.user_id == user.id)
    ))


def can_manage(user: Any, event: Event) -> bool:
    return has_permission(user, event, Permission.MANAGE_PRESENTATIONS)


def can_upload(user: Any, session: ConferenceSession) -> bool:
    """Organisers, and the session's own speakers while they hold the speaker permission."""
    if can_manage(user, session.event):
        return True
    return has_permission(user, session.event, Permission.UPLOAD_OWN_SLIDES) and is_session_speaker(user, session)


def can_see_private(user: Any, session: ConferenceSession) -> bool:
    """Unpublished decks and earlier versions: organisers and the session's own speakers."""
    return can_manage(user, session.event) or is_session_speaker(user, session)


def current_version(session: ConferenceSession) -> int | None:
    return db.session.scalar(select(func.max(Presentation.version)).where(Presentation.session_id == session.id))


def session_end(session: ConferenceSession) -> datetime | None:
    """When the session ends as released: automatic publication follows the programme people see, so a
    session moved in the editor (or never released) publishes nothing early."""
    return released_end(session.event, session.id)


def visibility_of(presentation: Presentation, now: datetime | None = None) -> Visibility:
    """As the public sees it: the slides of a session that no release names are private, whatever their mode."""
    session = presentation.session
    entry = released_session(session.event, session.id)
    if entry is None:
        return Visibility.PRIVATE
    return presentation.visibility(entry.end_at, now or utcnow())


def is_public(presentation: Presentation, now: datetime | None = None) -> bool:
    """The current version of a session, once published, is for everyone who may see the event."""
    return presentation.version == current_version(presentation.session) and \
        visibility_of(presentation, now) == Visibility.PUBLISHED


def can_view(user: Any, presentation: Presentation) -> bool:
    return is_public(presentation) or can_see_private(user, presentation.session)


def visible_presentations(user: Any, session: ConferenceSession) -> list[Presentation]:
    """Newest first: every version for organisers and the session's speakers, else the published current one."""
    versions = list(db.session.scalars(
        select(Presentation).where(Presentation.session_id == session.id).order_by(Presentation.version.desc())))
    if can_see_private(user, session):
        return versions
    if versions and visibility_of(versions[0]) == Visibility.PUBLISHED:
        return versions[:1]
    return []


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


# --- changes ---------------------------------------------------------------------------------------------


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
    after_commit.defer(_remove_files, paths)
    after_commit.defer(pagecache.forget_panels, session_id)


def _remove_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def set_visibility(presentation: Presentation, *, mode: str, actor: User) -> Presentation:
    """Organisers publish or hide by hand, or return the deck to automatic publication after the session.
    After the commit the session page's cached slides panel is dropped, so a hidden deck disappears at once."""
    if not can_manage(actor, presentation.event):
        raise NotAllowed(_("Only organisers may publish or hide slides."))
    try:
        presentation.visibility_mode = VisibilityMode(mode)
    except ValueError:
        raise ValidationFailed(_("Unknown visibility; use automatic, published or hidden."),
                               field="visibility_mode") from None
    db.session.flush()
    after_commit.defer(pagecache.forget_panels, presentation.session_id)
    return presentation


def send_slide_reminder(session: ConferenceSession, *, actor: User) -> int:
    """Mail the session's speakers that slides are missing. Returns the number of mails queued."""
    if not can_manage(actor, session.event):
        raise NotAllowed(_("Only organisers may send reminders."))
    event = session.event
    link = external_url("presentations.session_slides", slug=event.slug, session_id=session.id)
    count = 0
    for address, name, user in speaker_addresses(session):
        with mail_locale(user, event):  # the speaker's own language if they have an account, else the event's
            body = _(
                "Hello %(name)s,\n\nwe have not yet received the slides for your session \"%(title)s\" at "
                "%(event)s. Please upload them here (PDF, PowerPoint, OpenDocument or Keynote):\n\n%(link)s\n\n"
                "Thank you!\n%(event)s", name=name, title=session.title, event=event.title, link=link)
            subject = _("Your slides for %(title)s", title=session.title)[:200]
            send_mail(to=address, subject=subject, body=body, event_id=event.id, to_name=name)
        count += 1
    if not count:
        raise ValidationFailed(_("This session has no speaker with an e-mail address."), code="no_recipients")
    return count


def speaker_addresses(session: ConferenceSession) -> list[tuple[str, str, User | None]]:
    """(address, name, account) of the session's speakers: their account, else their latest invitation."""
    result: dict[str, tuple[str, str, User | None]] = {}
    for link in session.speakers:
        profile = link.speaker
        if profile.user is not None:
            result.setdefault(profile.user.email, (profile.user.email, profile.name, profile.user))
            continue
        email = db.session.scalar(select(SpeakerInvitation.email).where(SpeakerInvitation.speaker_id == profile.id)
                                  .order_by(SpeakerInvitation.created_at.desc()).limit(1))
        if email:
            result.setdefault(email, (email, profile.name, None))
    return list(result.values())


# --- previews (conference.presentations.previews, in the job queue) --------------------------------------


def wait_for_background_tasks(timeout: float = 30.0) -> None:
    """Join the job tasks of a process that does not serve (tests, commands)."""
    from conference.core.jobs import wait_idle

    wait_idle(current_app._get_current_object(), timeout)  # type: ignore[attr-defined]


def render_thumbnail(app: Flask, presentation_id: int) -> None:
    """Render the preview right away (commands); never raises, failures are recorded on the deck."""
    from conference.presentations.previews import render_now

    render_now(app, presentation_id)


# --- payloads, headers, export links -----------------------------------------------------------------------


def presentation_payload(presentation: Presentation, *, now: datetime | None = None,
                         latest: int | None = None) -> dict[str, Any]:
    """The one JSON shape of a presentation version (API list, upload answer)."""
    latest = latest if latest is not None else current_version(presentation.session)
    urls = {"download_url": url_for("presentations.download", session_id=presentation.session_id,
                                    presentation_id=presentation.id)}
    if presentation.thumbnail_state == ThumbnailState.READY:
        urls["thumbnail_url"] = url_for("presentations.thumbnail", session_id=presentation.session_id,
                                        presentation_id=presentation.id)
    return {
        "id": presentation.id,
        "session_id": presentation.session_id,
        "version": presentation.version,
        "is_current": presentation.version == latest,
        "filename": presentation.original_filename,
        "file_type": presentation.file_type,
        "size": presentation.size_bytes,
        "sha256": presentation.sha256,
        "visibility": str(visibility_of(presentation, now)),
        "visibility_mode": presentation.visibility_mode,
        "thumbnail": presentation.thumbnail_state,
        "created_at": presentation.created_at.isoformat(),
        **urls,
    }


def published_presentations(event: Event, now: datetime | None = None) -> list[Presentation]:
    """The current, published version of the slides of every released session that is not cancelled, ordered
    by the session's released end. Sessions only in the editor have none here, whatever their decks' mode."""
    now = now or utcnow()
    schedule = published_schedule(event)
    if schedule is None:
        return []
    latest = (select(Presentation.session_id, func.max(Presentation.version).label("version"))
              .where(Presentation.event_id == event.id).group_by(Presentation.session_id).subquery())
    rows = db.session.scalars(
        select(Presentation).join(latest, (Presentation.session_id == latest.c.session_id)
                                  & (Presentation.version == latest.c.version))
    ).all()
    published = []
    for presentation in rows:
        entry = schedule.session(presentation.session_id)
        if entry is not None and not entry.cancelled \
                and presentation.visibility(entry.end_at, now) == Visibility.PUBLISHED:
            published.append((entry.end_at or now, entry.title, presentation))
    return [presentation for _end, _title, presentation in sorted(published, key=lambda item: item[:2])]


def absolute_url(endpoint: str, **values: Any) -> str:
    if get_settings().external_url or not has_request_context():
        return external_url(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def session_attachments(sender: Any, *, event: Event, **_kwargs: Any) -> dict[int, list[dict[str, str]]]:
    """Receiver of `core.signals.session_attachments`: the published slides with absolute download links."""
    result: dict[int, list[dict[str, str]]] = {}
    for presentation in published_presentations(event):
        result.setdefault(presentation.session_id, []).append({
            "title": _("Slides: %(name)s", name=presentation.original_filename),
            "url": absolute_url("presentations.download", session_id=presentation.session_id,
                                presentation_id=presentation.id),
            "type": "slides",
        })
    return result



# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The slides the account uploaded (the list; the files stay downloadable on the session pages). Session
    titles as released, None for a session no release names (its working title may be a draft)."""
    rows = db.session.execute(
        select(Presentation, ConferenceSession, Event)
        .join(ConferenceSession, ConferenceSession.id == Presentation.session_id)
        .join(Event, Event.id == Presentation.event_id)
        .where(Presentation.uploaded_by_id == user_id).order_by(Presentation.id)).all()
    return {"uploads": [
        {"event": event.slug, "session_id": session.id,
         "session_title": released.title if (released := released_session(event, session.id)) else None,
         "version": presentation.version, "filename": presentation.original_filename,
         "size_bytes": presentation.size_bytes, "sha256": presentation.sha256,
         "published": is_public(presentation), "uploaded_at": presentation.created_at.isoformat()}
        for presentation, session, event in rows]}


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Published slides of events whose organisers marked them as the event's record stay, no longer linked to
    the account; every other upload of the account is deleted (its files and previews after the commit)."""
    for presentation in db.session.scalars(select(Presentation).where(Presentation.uploaded_by_id == user_id)).all():
        if presentation.event.keeps_slides_as_record and is_public(presentation):
            presentation.uploaded_by_id = None
            continue
        paths = [file_path(presentation)]
        if presentation.thumbnail_filename:
            paths.append(thumbnails_dir() / presentation.thumbnail_filename)
        db.session.delete(presentation)
        after_commit.defer(_remove_files, paths)
        after_commit.defer(pagecache.forget_panels, presentation.session_id)
    db.session.flush()
