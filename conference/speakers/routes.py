"""Speaker pages, profile editing, invitations and the organisers' mail outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from conference.auth.forms import EmptyForm
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import DomainError, NotFound
from conference.core.form_posts import save_form
from conference.core.http_cache import cacheable
from conference.core.loading import get_in_event_or_404
from conference.core.mail import OutboxMessage, link_segments
from conference.core.permissions import Permission, has_permission
from conference.core.security import accept_upload, upload_endpoint
from conference.core.signals import account_data, account_erasing
from conference.events.access import event_permission_required, load_event
from conference.events.models import Event
from conference.extensions import db
from conference.settings import get_settings
from conference.speakers import services
from conference.speakers.forms import InvitationForm, SpeakerProfileForm
from conference.speakers.models import SpeakerInvitation, SpeakerProfile

if TYPE_CHECKING:
    from conference.agenda.models import ConferenceSession
    from conference.agenda.schedule import PSession

bp = Blueprint("speakers", __name__)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    account_data.connect(services.account_data)
    account_erasing.connect(services.erase_account)
    # The photo forms take a photo's size only from someone who may edit the profile; their CSRF check
    # waits until the view knows that (`accept_upload`), everyone else meets the small default limit.
    for endpoint in ("speakers.edit_profile", "speakers.create_speaker"):
        upload_endpoint(endpoint)
PHOTO_FORM_BYTES = services.PHOTO_MAX_BYTES + 64 * 1024  # the photo and the profile's text fields
PROFILE_FIELDS = ("name", "academic_title", "position", "organisation", "bio", "links")


@bp.app_template_global()
def session_url(event: Event, session: ConferenceSession | PSession) -> str | None:
    """The agenda's session page, if the agenda offers one (the speakers domain must not require it)."""
    if "agenda.session_page" in current_app.view_functions:
        return url_for("agenda.session_page", slug=event.slug, session_id=session.id)
    return None


def _load_profile(event: Event, speaker_id: int) -> SpeakerProfile:
    return get_in_event_or_404(SpeakerProfile, speaker_id, event, message=_("No such speaker."))


@bp.route("/events/<slug>/speakers")
def speaker_list(slug: str) -> Any:
    event = load_event(slug)
    cacheable(shared=False)
    return render_template("speakers/list.html", event=event, speakers=services.public_speakers(event),
                           own=services.profile_for_user(event, current_user))


@bp.route("/events/<slug>/speakers/<int:speaker_id>")
def speaker_page(slug: str, speaker_id: int) -> Any:
    event = load_event(slug)
    cacheable(shared=False)
    profile = _load_profile(event, speaker_id)
    can_edit = current_user.is_authenticated and profile.can_edit(current_user)
    if not services.is_public(profile) and not can_edit:
        raise NotFound(_("No such speaker."))
    return render_template("speakers/speaker.html", event=event, profile=profile, can_edit=can_edit,
                           sessions=services.released_sessions_of(profile))


@bp.route("/events/<slug>/speakers/<int:speaker_id>/photo")
def photo(slug: str, speaker_id: int) -> Any:
    event = load_event(slug)
    profile = _load_profile(event, speaker_id)
    visible = services.is_public(profile) or (current_user.is_authenticated and profile.can_edit(current_user))
    path = services.photos_dir() / profile.photo_filename if profile.photo_filename else None
    if not visible or path is None or not path.exists():
        raise NotFound(_("No photo."))
    # Revalidated on every view (ETag): a replaced, removed or no longer public photo is not kept anywhere.
    response = send_file(path, mimetype="image/jpeg", max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.route("/events/<slug>/speakers/me")
@login_required
def my_profile(slug: str) -> Any:
    event = load_event(slug)
    profile = services.profile_for_user(event, current_user)
    if profile is None:
        raise NotFound(_("You have no speaker profile in this event."))
    return redirect(url_for(".edit_profile", slug=slug, speaker_id=profile.id))


@bp.route("/events/<slug>/speakers/<int:speaker_id>/edit", methods=["GET", "POST"])
@login_required
def edit_profile(slug: str, speaker_id: int) -> Any:
    event = load_event(slug)
    profile = _load_profile(event, speaker_id)
    if not profile.can_edit(current_user):
        raise NotFound(_("No such speaker."))  # no hint that the profile exists
    accept_upload(PHOTO_FORM_BYTES)  # the caller may edit this profile: a photo's size, then CSRF
    form = SpeakerProfileForm(obj=profile)
    if form.validate_on_submit():
        upload = form.photo.data if form.photo.data and getattr(form.photo.data, "filename", "") else None
        done = save_form(form, lambda: services.update_profile(
            profile, actor=current_user, photo=upload.stream if upload else None,
            remove_photo=bool(form.remove_photo.data), **{name: getattr(form, name).data for name in PROFILE_FIELDS}),
            field="name", saved=_("The profile has been saved."),
            then=url_for(".speaker_page", slug=slug, speaker_id=profile.id))
        if done:
            return done
    status = 400 if form.is_submitted() else 200
    return render_template("speakers/edit.html", event=event, profile=profile, form=form), status


# --- organisers --------------------------------------------------------------------------------------------


def _invitation_form(event: Event) -> InvitationForm:
    form = InvitationForm()
    sessions = services.invitable_sessions(event)
    profiles = db.session.scalars(select(SpeakerProfile).where(SpeakerProfile.event_id == event.id)
                                  .order_by(SpeakerProfile.name)).all()
    form.session_id.choices = [SelectChoice(s.id, s.title) for s in sessions]  # type: ignore[arg-type]
    form.speaker_id.choices = [SelectChoice(0, _("New profile (enter the name below)"))] + [  # type: ignore
        SelectChoice(p.id, p.display_name) for p in profiles]  # type: ignore[arg-type]
    return form


def _render_manage(event: Event, form: InvitationForm, status: int = 200) -> Any:
    profiles = db.session.scalars(select(SpeakerProfile).where(SpeakerProfile.event_id == event.id)
                                  .order_by(SpeakerProfile.name)).all()
    invitations = db.session.scalars(select(SpeakerInvitation).where(SpeakerInvitation.event_id == event.id)
                                     .order_by(SpeakerInvitation.created_at.desc()).limit(200)).all()
    sessions = services.sessions_by_id(event)
    return render_template("speakers/manage.html", event=event, profiles=profiles, invitations=invitations,
                           sessions=sessions, form=form, now=utcnow()), status


@bp.route("/manage/events/<slug>/speakers")
@event_permission_required(Permission.MANAGE_SPEAKERS)
def manage_speakers(event: Event) -> Any:
    return _render_manage(event, _invitation_form(event))


@bp.route("/manage/events/<slug>/speakers/invite", methods=["POST"])
@event_permission_required(Permission.MANAGE_SPEAKERS)
def invite(event: Event) -> Any:
    form = _invitation_form(event)
    if form.validate_on_submit():
        session = services.session_in_event(event, form.session_id.data)
        speaker = db.session.get(SpeakerProfile, form.speaker_id.data) if form.speaker_id.data else None
        try:
            if session is None:
                raise NotFound(_("No such session."), field="session_id")
            services.invite_speaker(event, session=session, email=form.email.data or "", actor=current_user,
                                    speaker=speaker, name=form.name.data or "", role=form.role.data or "")
        except DomainError as error:
            db.session.rollback()
            target = getattr(form, error.field or "email", form.email)
            target.errors = [*target.errors, error.message]  # type: ignore[assignment]
        else:
            after_commit.commit()
            flash(_("The invitation has been sent to %(email)s.", email=form.email.data), "success")
            return redirect(url_for(".manage_speakers", slug=event.slug), code=303)
    return _render_manage(event, form, 400)


@bp.route("/manage/events/<slug>/speakers/new", methods=["GET", "POST"])
@event_permission_required(Permission.MANAGE_SPEAKERS)
def create_speaker(event: Event) -> Any:
    accept_upload(PHOTO_FORM_BYTES)
    form = SpeakerProfileForm()
    if form.validate_on_submit():
        def create() -> None:
            fields = {name: getattr(form, name).data for name in PROFILE_FIELDS}
            profile = services.create_profile(event, actor=current_user, **fields)
            upload = form.photo.data if form.photo.data and getattr(form.photo.data, "filename", "") else None
            if upload is not None:
                services.update_profile(profile, actor=current_user, photo=upload.stream, **fields)

        done = save_form(form, create, field="name", saved=_("The speaker profile has been created."),
                         then=url_for(".manage_speakers", slug=event.slug))
        if done:
            return done
    status = 400 if form.is_submitted() else 200
    return render_template("speakers/edit.html", event=event, profile=None, form=form), status


@bp.route("/events/<slug>/invitations/<token>", methods=["GET", "POST"])
def invitation(slug: str, token: str) -> Any:
    event = load_event(slug)
    invitation = services.load_invitation(event, token)
    form = EmptyForm()
    if request.method == "POST" and current_user.is_authenticated:
        profile = services.accept_invitation(invitation, user=current_user)
        after_commit.commit()
        flash(_("Welcome as a speaker! Please check your profile."), "success")
        return redirect(url_for(".edit_profile", slug=slug, speaker_id=profile.id), code=303)
    if request.method == "POST":
        return redirect(url_for("auth.login", next=request.path), code=303)
    session = services.session_in_event(event, invitation.session_id)
    return render_template("speakers/invitation.html", event=event, invitation=invitation, session=session,
                           form=form)


@bp.route("/manage/events/<slug>/outbox")
@event_permission_required(Permission.MANAGE_SPEAKERS)
def outbox(event: Event) -> Any:
    """Mails that were not sent over SMTP (none configured), so the flows work on a laptop."""
    messages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.event_id == event.id)
                                  .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
                                  .limit(500)).all()
    return render_template("speakers/outbox.html", event=event,
                           messages=[(m, link_segments(m.body)) for m in messages],
                           smtp=bool(get_settings().mail_server),
                           can_manage_event=has_permission(current_user, event, Permission.MANAGE_EVENT))
