"""Slide pages and the presentations API: upload (streamed), list, download, delete, publish, dashboard."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from conference.agenda import pagecache
from conference.agenda.models import ConferenceSession, SessionKind
from conference.agenda.public import released_session
from conference.agenda.schedule import PSession, published_schedule
from conference.auth.forms import EmptyForm
from conference.core import after_commit
from conference.core.api import Unauthenticated, api_login_required, field, json_body
from conference.core.db import utcnow
from conference.core.errors import DomainError, NotFound, ValidationFailed, error_response
from conference.core.files import attachment_disposition, file_response
from conference.core.permissions import Permission
from conference.core.security import upload_endpoint
from conference.core.signals import account_data, account_erasing, session_attachments, slides_downloaded
from conference.events.access import can_see_event, event_permission_required, load_event
from conference.events.models import Event
from conference.extensions import db
from conference.presentations import archive as archives
from conference.presentations import openapi, previews, services, versions
from conference.presentations.models import Presentation, ThumbnailState
from conference.presentations.receiver import receive_upload
from conference.presentations.storage import ALLOWED_TYPES
from conference.presentations.upload_errors import UploadTooLarge
from conference.presentations.upload_request import admit_upload, request_body

bp = Blueprint("presentations", __name__)
DOWNLOAD_CSP = "default-src 'none'; sandbox"
UPLOAD_ENDPOINTS = ("presentations.api_upload", "presentations.upload_form")


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    services.ensure_directories(state.app)  # type: ignore[arg-type]
    previews.register_jobs()
    archives.register_jobs()
    openapi.register(state.app)  # type: ignore[arg-type]
    for endpoint in UPLOAD_ENDPOINTS:  # CSRF is checked inside, without parsing the body as a form
        upload_endpoint(endpoint)
    session_attachments.connect(services.session_attachments)
    account_data.connect(services.account_data)
    account_erasing.connect(services.erase_account)


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"presentation_panel": presentation_panel}


def presentation_panel(event: Event, session: ConferenceSession) -> dict[str, Any]:
    """What the session page's slides partial shows to the current user."""
    decks = services.visible_presentations(current_user, session)
    now, ends_at = utcnow(), services.session_end(session)
    if ends_at is not None and ends_at > now:
        pagecache.changes_at(ends_at)  # an automatic deck is published then: a cached panel must not outlive it
    return {
        "decks": decks,
        "latest": decks[0].version if decks else None,
        "can_upload": not session.is_break and services.can_upload(current_user, session),
        "can_manage": services.can_manage(current_user, event),
        "max_bytes": services.max_upload_bytes(),
        "max_mb": f"{services.max_upload_bytes() / (1024 * 1024):g}",
        "accept": ",".join(f".{t}" for t in ALLOWED_TYPES),
        "now": now,
        "ends_at": ends_at,
        "released": released_session(event, session.id) is not None,
        "delete_form": EmptyForm(),
    }


# --- loading ---------------------------------------------------------------------------------------------


def _load_session(session_id: int) -> ConferenceSession:
    session = db.session.get(ConferenceSession, session_id)
    if session is None or not can_see_event(current_user, session.event):
        raise NotFound(_("No such session."))
    return session


def _load_presentation(session_id: int, presentation_id: int) -> Presentation:
    """The version if the caller may see it; unpublished decks are 404 to everyone else."""
    presentation = db.session.get(Presentation, presentation_id)
    if presentation is None or presentation.session_id != session_id \
            or not can_see_event(current_user, presentation.event) \
            or not services.can_view(current_user, presentation):
        raise NotFound(_("No such presentation."))
    return presentation


def _load_event_session(event: Event, session_id: int) -> ConferenceSession:
    session = db.session.get(ConferenceSession, session_id)
    if session is None or session.event_id != event.id:
        raise NotFound(_("No such session."))
    return session


def _released_or_own(session: ConferenceSession) -> PSession | None:
    """The session as released. One that no release names yet exists only for the organisers and its own
    speakers (they prepare its slides); everyone else gets 404."""
    entry = released_session(session.event, session.id)
    if entry is None and not services.can_see_private(current_user, session):
        raise NotFound(_("No such session."))
    return entry


# --- upload ----------------------------------------------------------------------------------------------


def _receive_upload(session: ConferenceSession) -> tuple[Presentation, list[str]]:
    """Permission and limits first (no body read), then stream to disk, check, take active content out of a
    PDF, store as a new version. Returns the version and the kinds of active content removed."""
    limit, on_file = admit_upload(session)
    upload = receive_upload(request_body(), content_type=request.headers.get("Content-Type"), limit=limit,
                            directory=services.presentations_dir(), on_file=on_file)
    if upload.file_type == "pdf":
        try:
            previews.clean_upload(upload)  # in a sandboxed child; the cleaned file is what is stored
        except BaseException:
            upload.discard()
            raise
    presentation = versions.add_presentation(session, upload=upload, actor=current_user)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        after_commit.discard_deferred()
        versions.remove_uncommitted_file(presentation)
        raise
    after_commit.run_deferred()  # not in the `try`: once committed, the file stays whatever happens here
    return presentation, upload.removed


@bp.route("/api/v1/sessions/<int:session_id>/presentations", methods=["POST"])
def api_upload(session_id: int) -> Any:
    presentation, removed = _receive_upload(_load_session(session_id))
    return jsonify({**services.presentation_payload(presentation), "removed_content": removed,
                    "notice": previews.removed_message(removed)}), 201


@bp.route("/api/v1/sessions/<int:session_id>/presentations", methods=["GET"])
def api_list(session_id: int) -> Any:
    session = _load_session(session_id)
    _released_or_own(session)
    decks = services.visible_presentations(current_user, session)
    latest = services.current_version(session)
    return jsonify({"presentations": [services.presentation_payload(p, latest=latest) for p in decks]})


@bp.route("/events/<slug>/sessions/<int:session_id>/slides", methods=["POST"])
def upload_form(slug: str, session_id: int) -> Any:
    """The same upload for browsers without JavaScript: a plain multipart form, answered with a redirect."""
    event = load_event(slug)
    session = _load_event_session(event, session_id)
    try:
        presentation, removed = _receive_upload(session)
    except Unauthenticated:
        return redirect(url_for("auth.login", next=url_for(".session_slides", slug=slug, session_id=session_id)))
    except UploadTooLarge as error:
        flash(error.message, "error")
        return redirect(url_for(".session_slides", slug=slug, session_id=session_id), code=303)
    except DomainError as error:
        if error.status in (401, 403, 404):
            raise
        flash(error.message, "error")
        return redirect(url_for(".session_slides", slug=slug, session_id=session_id), code=303)
    flash(_("Version %(n)d of your slides has been saved.", n=presentation.version), "success")
    notice = previews.removed_message(removed)
    if notice:
        flash(notice, "warning")
    return redirect(url_for(".session_slides", slug=slug, session_id=session_id), code=303)


# --- download, preview, delete, visibility -----------------------------------------------------------------


def _private_file_headers(response: Response, *, public: bool = True) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    # Unpublished slides must not stay behind in any cache, not even the browser's own.
    response.headers["Cache-Control"] = "private, no-cache" if public else "private, no-store"
    return response


@bp.route("/api/v1/sessions/<int:session_id>/presentations/<int:presentation_id>/download")
def download(session_id: int, presentation_id: int) -> Any:
    presentation = _load_presentation(session_id, presentation_id)
    try:
        handle = services.file_path(presentation).open("rb")
    except FileNotFoundError:
        raise NotFound(_("The file is missing.")) from None
    response = file_response(handle, request, mimetype=presentation.content_type, etag=presentation.sha256,
                             modified=presentation.created_at)
    response.headers["Content-Disposition"] = attachment_disposition(presentation.original_filename)
    if request.method == "GET" and response.status_code == 200:  # not ranges, not revalidations (304)
        slides_downloaded.send(current_app._get_current_object(), presentation_id=presentation.id,  # type: ignore
                               session_id=presentation.session_id, event_id=presentation.event_id)
    return _private_file_headers(response, public=services.is_public(presentation))


@bp.route("/api/v1/sessions/<int:session_id>/presentations/<int:presentation_id>/thumbnail")
def thumbnail(session_id: int, presentation_id: int) -> Any:
    presentation = _load_presentation(session_id, presentation_id)
    if presentation.thumbnail_state != ThumbnailState.READY or not presentation.thumbnail_filename:
        raise NotFound(_("No preview yet."))
    response = send_file(services.thumbnails_dir() / presentation.thumbnail_filename, mimetype="image/png",
                         conditional=True, max_age=0)
    return _private_file_headers(response, public=services.is_public(presentation))


@bp.route("/api/v1/sessions/<int:session_id>/presentations/<int:presentation_id>", methods=["DELETE"])
@api_login_required
def api_delete(session_id: int, presentation_id: int) -> Any:
    versions.delete_presentation(_load_presentation(session_id, presentation_id), actor=current_user)
    after_commit.commit()
    return "", 204


@bp.route("/api/v1/sessions/<int:session_id>/presentations/<int:presentation_id>", methods=["PATCH"])
@api_login_required
def api_update(session_id: int, presentation_id: int) -> Any:
    presentation = _load_presentation(session_id, presentation_id)
    data = json_body()
    unknown = sorted(set(data) - {"visibility_mode"})
    if unknown:
        raise ValidationFailed(_("Unknown field '%(name)s'.", name=unknown[0]), field=unknown[0])
    mode = field(data, "visibility_mode", str, max_length=16)
    services.set_visibility(presentation, mode=mode, actor=current_user)
    after_commit.commit()
    return jsonify(services.presentation_payload(presentation))


@bp.route("/events/<slug>/sessions/<int:session_id>/slides/<int:presentation_id>/delete", methods=["POST"])
def delete_form(slug: str, session_id: int, presentation_id: int) -> Any:
    load_event(slug)
    if not current_user.is_authenticated:
        raise Unauthenticated(_("Please log in."))
    versions.delete_presentation(_load_presentation(session_id, presentation_id), actor=current_user)
    after_commit.commit()
    flash(_("The version has been deleted."), "info")
    return redirect(url_for(".session_slides", slug=slug, session_id=session_id), code=303)


@bp.route("/manage/events/<slug>/presentations/<int:presentation_id>/visibility", methods=["POST"])
@event_permission_required(Permission.MANAGE_PRESENTATIONS)
def visibility_form(event: Event, presentation_id: int) -> Any:
    presentation = db.session.get(Presentation, presentation_id)
    if presentation is None or presentation.event_id != event.id:
        raise NotFound(_("No such presentation."))
    services.set_visibility(presentation, mode=request.form.get("visibility_mode", ""), actor=current_user)
    after_commit.commit()
    flash(_("The visibility has been changed."), "success")
    return redirect(url_for(".dashboard", slug=event.slug), code=303)


# --- pages -----------------------------------------------------------------------------------------------


@bp.route("/events/<slug>/sessions/<int:session_id>/slides")
def session_slides(slug: str, session_id: int) -> Any:
    """The session's slides on their own page (the agenda's session page includes the same partial)."""
    event = load_event(slug)
    session = _load_event_session(event, session_id)
    entry = _released_or_own(session)
    return render_template("presentations/session.html", event=event, session=session,
                           title=entry.title if entry is not None else session.title)


@bp.route("/events/<slug>/presentations")
def event_presentations(slug: str) -> Any:
    event = load_event(slug)
    return render_template("presentations/event.html", event=event, schedule=published_schedule(event),
                           decks=services.published_presentations(event))


@bp.route("/events/<slug>/presentations/archive.zip")
def archive(slug: str) -> Any:
    """All published decks in one zip, built once per set of decks (`presentations.archive`), sent as a file."""
    event = load_event(slug)
    found = archives.locate(event)
    if isinstance(found, archives.Building):
        after_commit.commit()  # the build job, if this request queued it
        found = archives.wait_for(found)
    if found is None:
        raise NotFound(_("No slides have been published yet."))
    if isinstance(found, archives.Pending):
        pending = make_response(error_response(
            503, _("The archive of all slides is being prepared. Please try again in a few seconds."),
            "archive_pending"))
        pending.headers["Retry-After"] = str(found.retry_after)
        return pending
    response = file_response(found.file, request, mimetype="application/zip", etag=found.key,
                             modified=found.modified)
    response.headers["Content-Disposition"] = attachment_disposition(f"{event.slug}-slides.zip")
    return _private_file_headers(response)


@bp.route("/manage/events/<slug>/presentations")
@event_permission_required(Permission.MANAGE_PRESENTATIONS)
def dashboard(event: Event) -> Any:
    sessions = db.session.scalars(select(ConferenceSession).where(
        ConferenceSession.event_id == event.id, ConferenceSession.kind != SessionKind.BREAK,
        ConferenceSession.is_cancelled.is_(False))).all()
    counts = dict(db.session.execute(
        select(Presentation.session_id, func.count()).where(Presentation.event_id == event.id)
        .group_by(Presentation.session_id)).all())
    now = utcnow()
    ordered = sorted(sessions, key=lambda s: (min((sl.start_at for sl in s.slots), default=now), s.title))
    return render_template("presentations/dashboard.html", event=event, sessions=ordered, counts=counts,
                           missing=[s for s in ordered if not counts.get(s.id)], form=EmptyForm(), now=now,
                           ends_at=services.session_end)


@bp.route("/manage/events/<slug>/presentations/remind/<int:session_id>", methods=["POST"])
@event_permission_required(Permission.MANAGE_PRESENTATIONS)
def remind(event: Event, session_id: int) -> Any:
    count = services.send_slide_reminder(_load_event_session(event, session_id), actor=current_user)
    after_commit.commit()
    flash(_("Reminder sent to %(n)d speakers.", n=count), "success")
    return redirect(url_for(".dashboard", slug=event.slug), code=303)
