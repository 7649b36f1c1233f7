"""Slide rules: who may upload, versions, visibility, deletion, previews, reminders, export links.

Services flush, never commit. Files are moved into place before the commit (and out again if it fails) and
removed after it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from conference.agenda import pagecache
from conference.agenda.models import ConferenceSession, SessionSpeaker
from conference.agenda.public import released_end, released_session
from conference.agenda.schedule import published_schedule
from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import NotAllowed, ValidationFailed
from conference.core.mail import external_url, mail_locale, send_mail
from conference.core.permissions import Permission, has_permission
from conference.events.models import Event
from conference.extensions import db
from conference.presentations.models import (
    Presentation,
    ThumbnailState,
    Visibility,
    VisibilityMode,
)
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


def remove_files(paths: list[Path]) -> None:
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
        after_commit.defer(remove_files, paths)
        after_commit.defer(pagecache.forget_panels, presentation.session_id)
    db.session.flush()
