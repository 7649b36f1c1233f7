"""Speaker rules: profiles, photos, invitations and claiming a profile. Services flush, never commit."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, select

from conference.auth.accounts import normalise_email, validate_email
from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import Conflict, DomainError, NotAllowed, NotFound, ValidationFailed
from conference.core.images import (
    process_upload,
    remove_stored_file,
    replace_stored_file,
    store_file,
)
from conference.core.mail import external_url, mail_locale, send_mail
from conference.core.permissions import Permission, Role, has_permission
from conference.core.rendering import format_day
from conference.core.text import has_forbidden_line_text, has_forbidden_text
from conference.events import services as event_services
from conference.events.models import Event
from conference.extensions import db
from conference.settings import get_settings
from conference.speakers.models import InvitationRole, SpeakerInvitation, SpeakerProfile

if TYPE_CHECKING:
    from conference.agenda.models import ConferenceSession
    from conference.agenda.schedule import PSession
from conference.speakers.photos import PHOTO_MAX_BYTES, PHOTO_MAX_PIXELS, RECIPE

MAX_LINKS = 10
INVITATION_SALT = "speaker-invitation"
INVITATION_MAX_AGE = timedelta(days=14)


class Gone(DomainError):
    code = "gone"
    status = 410


# --- profiles --------------------------------------------------------------------------------------------


def _text(value: str | None, *, name: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(_("Please fill in this field."), field=name)
    if len(text) > max_length:
        raise ValidationFailed(_("At most %(n)d characters.", n=max_length), field=name)
    multiline = name in ("bio", "links")
    if has_forbidden_text(text) if multiline else has_forbidden_line_text(text):
        raise ValidationFailed(_("The text contains characters that are not allowed."), field=name)
    return text


def clean_links(text: str | None) -> str:
    """One http(s) URL per line, at most MAX_LINKS; anything else (javascript:, data:, ...) is refused."""
    links = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(links) > MAX_LINKS:
        raise ValidationFailed(_("At most %(n)d links.", n=MAX_LINKS), field="links")
    for link in links:
        parts = urlsplit(link)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc or len(link) > 500 \
                or any(ch.isspace() or ord(ch) < 32 for ch in link):
            raise ValidationFailed(_("Only http and https addresses are allowed as links: %(link)s",
                                     link=link[:80]), field="links")
    return "\n".join(links)


def profile_fields(**values: Any) -> dict[str, str]:
    return {
        "name": _text(values.get("name"), name="name", max_length=120, required=True),
        "academic_title": _text(values.get("academic_title"), name="academic_title", max_length=60),
        "position": _text(values.get("position"), name="position", max_length=120),
        "organisation": _text(values.get("organisation"), name="organisation", max_length=160),
        "bio": _text(values.get("bio"), name="bio", max_length=5000),
        "links": clean_links(values.get("links")),
    }


def create_profile(event: Event, *, actor: User, **values: Any) -> SpeakerProfile:
    """An organiser creates an (unclaimed) profile."""
    if not has_permission(actor, event, Permission.MANAGE_SPEAKERS):
        raise NotAllowed(_("Only organisers may create speaker profiles."))
    profile = SpeakerProfile(event_id=event.id, **profile_fields(**values))
    db.session.add(profile)
    db.session.flush()
    return profile


def update_profile(profile: SpeakerProfile, *, actor: User, photo: IO[bytes] | None = None,
                   remove_photo: bool = False, **values: Any) -> SpeakerProfile:
    """Change a profile (organisers: any in their event; speakers: their own claimed one).

    Side effects: a new photo is written now; the replaced photo file is removed after the commit.
    """
    if not profile.can_edit(actor):
        raise NotAllowed(_("You may edit only your own profile."))
    fields = profile_fields(**values)
    new_photo = store_photo(photo) if photo is not None else None
    for key, value in fields.items():
        setattr(profile, key, value)
    replace_stored_file(profile, "photo_filename", photos_dir(), new_photo, remove=remove_photo)
    db.session.flush()
    return profile


def photos_dir() -> Path:
    return Path(str(get_settings().upload_dir)) / "photos"


def process_photo(source: IO[bytes]) -> bytes:
    """A real image of bounded pixel count, decoded, oriented, resized to PHOTO_SIZE and re-encoded as JPEG.

    Re-encoding drops every metadata block (EXIF with location, comments, ICC tricks) and any payload
    hidden after the image data. Decoding an untrusted image happens in a sandboxed child
    (`conference.core.images.process_in_child`): a bomb or a decoder bug costs that child, not the server.
    """
    return process_upload(source, RECIPE, image=_("The photo"), field="photo", max_bytes=PHOTO_MAX_BYTES,
                          max_pixels=PHOTO_MAX_PIXELS)


def store_photo(source: IO[bytes]) -> str:
    """Process and write the photo under a server-generated name; returns that name."""
    return store_file(photos_dir(), process_photo(source), ".jpg")


def profile_for_user(event: Event, user: Any) -> SpeakerProfile | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(select(SpeakerProfile).where(SpeakerProfile.event_id == event.id,
                                                          SpeakerProfile.user_id == user.id))


def public_speakers(event: Event) -> list[SpeakerProfile]:
    """Profiles that a released session (not cancelled) names, by name. Invited or added in the editor only:
    not yet (the agenda's release decides, `conference.agenda.public`)."""
    ids = _released_speaker_ids(event)
    if not ids:
        return []
    return list(db.session.scalars(
        select(SpeakerProfile).where(SpeakerProfile.event_id == event.id, SpeakerProfile.id.in_(ids))
        .order_by(func.lower(SpeakerProfile.name))))


def is_public(profile: SpeakerProfile) -> bool:
    return profile.id in _released_speaker_ids(profile.event)


# --- the agenda's answers ---------------------------------------------------------------------------------
# The agenda comes after this domain (its models import SpeakerProfile). What speakers need of it is imported
# here, when called, and nowhere else: importing conference.speakers never loads the agenda (tests/test_layering).


def _released_speaker_ids(event: Event) -> frozenset[int]:
    from conference.agenda.public import released_speaker_ids
    return released_speaker_ids(event)


def released_sessions_of(profile: SpeakerProfile) -> list[tuple[PSession, str]]:
    """(session, role) of the released, not cancelled sessions that name the speaker, by start."""
    from conference.agenda.public import released_sessions_of_speaker
    return released_sessions_of_speaker(profile.event, profile.id)


def invitable_sessions(event: Event) -> list[ConferenceSession]:
    """The event's sessions (working rows, not breaks, not cancelled) a speaker may be invited to, by title."""
    from conference.agenda.models import ConferenceSession, SessionKind
    return list(db.session.scalars(select(ConferenceSession).where(
        ConferenceSession.event_id == event.id, ConferenceSession.kind != SessionKind.BREAK,
        ConferenceSession.is_cancelled.is_(False)).order_by(ConferenceSession.title)))


def sessions_by_id(event: Event) -> dict[int, ConferenceSession]:
    from conference.agenda.models import ConferenceSession
    return {s.id: s for s in db.session.scalars(select(ConferenceSession).where(
        ConferenceSession.event_id == event.id))}


def session_in_event(event: Event, session_id: int | None) -> ConferenceSession | None:
    from conference.agenda.models import ConferenceSession
    session = db.session.get(ConferenceSession, session_id) if session_id else None
    return session if session is not None and session.event_id == event.id else None


def _place_in_session(session_id: int, speaker_id: int, *, moderator: bool) -> None:
    """Name the speaker in the session (last place), unless it already does."""
    from conference.agenda.models import SessionSpeaker, SpeakerRole
    existing = db.session.scalar(select(SessionSpeaker).where(SessionSpeaker.session_id == session_id,
                                                              SessionSpeaker.speaker_id == speaker_id))
    if existing is None:
        position = db.session.scalar(select(func.coalesce(func.max(SessionSpeaker.position) + 1, 0))
                                     .where(SessionSpeaker.session_id == session_id)) or 0
        db.session.add(SessionSpeaker(session_id=session_id, speaker_id=speaker_id, position=position,
                                      role=SpeakerRole.MODERATOR if moderator else SpeakerRole.SPEAKER))


def _remove_from_sessions(speaker_ids: list[int]) -> None:
    from conference.agenda.models import SessionSpeaker
    db.session.execute(delete(SessionSpeaker).where(SessionSpeaker.speaker_id.in_(speaker_ids)))


# --- invitations -----------------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=INVITATION_SALT)


def invitation_token(invitation: SpeakerInvitation) -> str:
    return _serializer().dumps({"id": invitation.id, "nonce": invitation.nonce})


def invite_speaker(event: Event, *, session: ConferenceSession, email: str, actor: User,
                   speaker: SpeakerProfile | None = None, name: str = "",
                   role: str = InvitationRole.SPEAKER) -> SpeakerInvitation:
    """Invite someone by e-mail to speak in `session` (a new profile named `name`, or `speaker`).

    Side effect: the invitation mail (SMTP after commit, or the outbox row in this transaction).
    """
    if not has_permission(actor, event, Permission.MANAGE_SPEAKERS):
        raise NotAllowed(_("Only organisers may invite speakers."))
    if session.event_id != event.id or session.is_break:
        raise ValidationFailed(_("Choose a session of this event (not a break)."), field="session_id")
    email = validate_email(email)
    try:
        role = InvitationRole(role)
    except ValueError:
        raise ValidationFailed(_("Unknown role."), field="role") from None
    if speaker is None:
        speaker = create_profile(event, actor=actor, name=name)
    elif speaker.event_id != event.id:
        raise ValidationFailed(_("Choose a speaker of this event."), field="speaker_id")
    invitation = SpeakerInvitation(
        event_id=event.id, session_id=session.id, speaker_id=speaker.id, email=email, role=role,
        nonce=secrets.token_hex(16), invited_by_id=actor.id, expires_at=utcnow() + INVITATION_MAX_AGE)
    db.session.add(invitation)
    db.session.flush()
    link = external_url("speakers.invitation", slug=event.slug, token=invitation_token(invitation))
    invitee = db.session.scalar(select(User).where(User.email == email))
    with mail_locale(invitee, event):  # the invitee's own language if they have an account, else the event's
        body = _(
            "Hello %(name)s,\n\n%(inviter)s invites you to speak in \"%(title)s\" at %(event)s.\n\n"
            "Please open this link to accept; you can log in or create an account there, then edit your "
            "speaker profile and upload your slides:\n\n%(link)s\n\nThe link is valid until %(until)s (UTC).\n",
            name=speaker.name, inviter=actor.name, title=session.title, event=event.title, link=link,
            until=f"{format_day(invitation.expires_at.date())} {invitation.expires_at:%H:%M}")
        subject = _("Invitation to speak at %(event)s", event=event.title)[:200]
        send_mail(to=email, subject=subject, body=body, event_id=event.id, to_name=speaker.name)
    return invitation


def load_invitation(event: Event, token: str) -> SpeakerInvitation:
    """The invitation behind a signed link. Forged or foreign links are 404; expired ones 410."""
    max_age = int(INVITATION_MAX_AGE.total_seconds())
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise Gone(_("This invitation has expired. Please ask the organisers for a new one.")) from None
    except BadSignature:
        raise NotFound(_("This invitation link is not valid.")) from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        raise NotFound(_("This invitation link is not valid."))
    invitation = db.session.get(SpeakerInvitation, data["id"])
    if invitation is None or invitation.event_id != event.id or \
            not secrets.compare_digest(str(data.get("nonce", "")), invitation.nonce):
        raise NotFound(_("This invitation link is not valid."))
    if invitation.is_expired(utcnow()) and not invitation.is_accepted:
        raise Gone(_("This invitation has expired. Please ask the organisers for a new one."))
    return invitation


def accept_invitation(invitation: SpeakerInvitation, *, user: User) -> SpeakerProfile:
    """Claim the invited profile for `user`, give the speaker role (higher roles stay), join the session.

    Only the account of the invited address may accept, and only once its owner confirmed that address: a
    stranger who registered the address first must not get the profile even if the link reached them (links
    get forwarded, and organisers read them in the outbox).
    A person who already has a profile in the event keeps it; the invited, unclaimed placeholder is merged.
    Side effects: membership change signal (via `set_role`).
    """
    if invitation.is_accepted:
        if invitation.accepted_by_id == user.id:
            profile = profile_for_user(invitation.event, user)
            if profile is not None:
                return profile
        raise Conflict(_("This invitation has already been accepted."))
    if normalise_email(user.email) != normalise_email(invitation.email):
        raise NotAllowed(_("This invitation was sent to %(email)s. Please log in with the account of that "
                           "address (or create one with it) to accept.", email=invitation.email),
                         code="wrong_account")
    if not user.is_verified:
        raise NotAllowed(_("Please confirm your e-mail address first: open the link we mailed you (the button "
                           "at the top of the page sends it again), then accept the invitation."),
                         code="unconfirmed_address")
    event = invitation.event
    invited = invitation.speaker
    own = profile_for_user(event, user)
    if invited.user_id is not None and invited.user_id != user.id:
        raise Conflict(_("This speaker profile belongs to another account."))
    if own is None:
        invited.user_id = user.id
        profile = invited
    else:
        profile = own
    _place_in_session(invitation.session_id, profile.id, moderator=invitation.role == InvitationRole.MODERATOR)
    invitation.accepted_at = utcnow()
    invitation.accepted_by_id = user.id
    db.session.flush()
    if profile is not invited and invited.user_id is None and not invited.session_links:
        # The placeholder created for this invitation is no longer needed; others may still point at it.
        others = db.session.scalar(select(func.count()).select_from(SpeakerInvitation).where(
            SpeakerInvitation.speaker_id == invited.id, SpeakerInvitation.id != invitation.id,
            SpeakerInvitation.accepted_at.is_(None)))
        if not others:
            invitation.speaker_id = profile.id
            db.session.flush()
            db.session.delete(invited)
    event_services.set_role(event, user=user, role=Role.SPEAKER, keep_higher=True)
    db.session.flush()
    return profile


# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The account's speaker profiles (one per event), photo by file name only."""
    rows = db.session.execute(select(SpeakerProfile, Event).join(Event, Event.id == SpeakerProfile.event_id)
                              .where(SpeakerProfile.user_id == user_id).order_by(SpeakerProfile.id)).all()
    return {"speaker_profiles": [
        {"event": event.slug, "name": profile.name, "academic_title": profile.academic_title,
         "position": profile.position, "organisation": profile.organisation, "bio": profile.bio,
         "links": profile.link_list, "has_photo": bool(profile.photo_filename),
         "created_at": profile.created_at.isoformat()} for profile, event in rows]}


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Remove the account's speaker profiles with their session places and invitations; the photos' files go
    after the commit. Agenda releases published before keep their snapshot (the event's record) until the next."""
    profiles = db.session.scalars(select(SpeakerProfile).where(SpeakerProfile.user_id == user_id)).all()
    ids = [profile.id for profile in profiles]
    if not ids:
        return
    photos = [photos_dir() / profile.photo_filename for profile in profiles if profile.photo_filename]
    db.session.execute(delete(SpeakerInvitation).where(SpeakerInvitation.speaker_id.in_(ids)))
    _remove_from_sessions(ids)
    for profile in profiles:
        db.session.expire(profile, ["session_links"])
        db.session.delete(profile)
    db.session.flush()
    for path in photos:
        after_commit.defer(remove_stored_file, path)
