"""Event rules: creating events, registering attendees, giving roles. Services flush, never commit."""

from __future__ import annotations

import hmac
import io
import re
import secrets
from datetime import date
from pathlib import Path
from typing import IO, Any

from flask import current_app
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from PIL import Image
from sqlalchemy import func, select

from conference.auth.models import User
from conference.core import after_commit
from conference.core.contrast import AA_NORMAL_TEXT, COLOR, contrast_ratio
from conference.core.errors import Conflict, NotAllowed, ValidationFailed
from conference.core.images import ImageRefused, decode_image, replace_stored_file, store_file
from conference.core.permissions import ROLE_RANK, Role
from conference.core.signals import attendee_registered, membership_changed
from conference.core.timeutil import is_valid_timezone
from conference.events.models import Event, EventMembership, LinkVisibility, PendingRole, RegistrationMode
from conference.extensions import db
from conference.settings import get_settings

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}[a-z0-9]$")
# Lower-case letters and digits without the look-alikes i, l, o, 0, 1: read aloud or copied from a slide.
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_registration_code() -> str:
    """12 random characters (about 59 bits) in groups of four, e.g. `k7mq-x3tp-9wdn`."""
    characters = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return "-".join(characters[i:i + 4] for i in range(0, 12, 4))


def normalise_code(code: str | None) -> str:
    """Codes compare without case, spaces and dashes: `K7MQ X3TP 9WDN` is `k7mq-x3tp-9wdn`."""
    return "".join(ch for ch in (code or "").casefold() if ch != "-" and not ch.isspace())


def create_event(*, slug: str, title: str, start_date: date, end_date: date, timezone: str = "Europe/Berlin",
                 language: str = "de", description: str = "", is_published: bool = False) -> Event:
    if not SLUG_PATTERN.match(slug):
        raise ValidationFailed(_("The short name may use a-z, 0-9 and '-' (4 to 64 characters)."), field="slug")
    if db.session.scalar(select(Event.id).where(Event.slug == slug)):
        raise Conflict(_("This short name is already taken."), field="slug")
    validate_event_fields(title=title, start_date=start_date, end_date=end_date, timezone=timezone,
                          language=language)
    event = Event(slug=slug, title=title.strip(), start_date=start_date, end_date=end_date, timezone=timezone,
                  language=language, description=description, is_published=is_published)
    db.session.add(event)
    db.session.flush()
    return event


def validate_event_fields(*, title: str, start_date: date, end_date: date, timezone: str, language: str) -> None:
    if not title.strip() or len(title) > 200:
        raise ValidationFailed(_("The title must have 1 to 200 characters."), field="title")
    if end_date < start_date:
        raise ValidationFailed(_("The event cannot end before it starts."), field="end_date")
    if (end_date - start_date).days > 31:
        raise ValidationFailed(_("An event may last at most 32 days."), field="end_date")
    if not is_valid_timezone(timezone):
        raise ValidationFailed(_("Unknown time zone."), field="timezone")
    if language not in current_app.config["LANGUAGES"]:
        raise ValidationFailed(_("Unknown language."), field="language")


def update_event(event: Event, **changes: Any) -> Event:
    """Change settings. Registration with a code needs a code that cannot be guessed: without one, a random
    code is set; one the organiser chose needs `REGISTRATION_CODE_MIN_LENGTH` characters."""
    merged = {k: changes.get(k, getattr(event, k)) for k in ("title", "start_date", "end_date", "timezone",
                                                              "language")}
    validate_event_fields(**merged)
    mode = changes.get("registration_mode", event.registration_mode)
    if mode not in set(RegistrationMode):
        raise ValidationFailed(_("Unknown registration mode."), field="registration_mode")
    if changes.get("link_visibility", event.link_visibility) not in set(LinkVisibility):
        raise ValidationFailed(_("Unknown link visibility."), field="link_visibility")
    code = (changes.get("registration_code", event.registration_code) or "").strip()
    minimum = get_settings().registration_code_min_length
    if mode == RegistrationMode.CODE and not code:
        changes["registration_code"] = generate_registration_code()
    elif mode == RegistrationMode.CODE and len(normalise_code(code)) < minimum:
        raise ValidationFailed(_("The registration code must have at least %(n)d characters, not counting "
                                 "spaces and dashes (leave it empty for a random one).", n=minimum),
                               field="registration_code")
    for key, value in changes.items():
        setattr(event, key, value)
    db.session.flush()
    return event


def register_attendee(event: Event, *, user: User, code: str | None = None) -> EventMembership:
    """Register `user` for `event` as an attendee; people who already hold a role keep it. A new registration
    sends `attendee_registered` in this unit of work (the confirmation mail is queued with it)."""
    existing = membership_of(event, user)
    if existing is not None:
        return existing
    if event.registration_mode == RegistrationMode.CLOSED:
        raise NotAllowed(_("Registration for this event is closed."), code="registration_closed")
    expected = normalise_code(event.registration_code)
    if event.registration_mode == RegistrationMode.CODE and not (expected and hmac.compare_digest(
        normalise_code(code).encode(), expected.encode()
    )):
        raise ValidationFailed(_("The registration code is not correct."), field="code", code="wrong_code")
    membership = EventMembership(event_id=event.id, user_id=user.id, role=Role.ATTENDEE)
    db.session.add(membership)
    db.session.flush()
    user.forget_roles()
    attendee_registered.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                             event_id=event.id, user_id=user.id)
    return membership


def membership_of(event: Event, user: User) -> EventMembership | None:
    return db.session.scalar(
        select(EventMembership).where(EventMembership.event_id == event.id, EventMembership.user_id == user.id)
    )


def set_role(event: Event, *, user: User, role: Role | str, actor: User | None = None,
             keep_higher: bool = False) -> EventMembership | PendingRole:
    """Give `user` a role in `event` (creating the membership). Open sockets learn of it via a signal.

    With `keep_higher`, a person who already holds a higher role keeps it (e.g. an organiser invited to speak).
    A role reaches an address only once its owner proved it: for an unconfirmed account anything above what it
    holds waits as a `PendingRole` (returned instead of the membership) and applies at confirmation, so a
    stranger who registered the address first gains nothing. Lowering a role applies at once.
    """
    try:
        role = Role(role)
    except ValueError:
        raise ValidationFailed(_("Unknown role."), field="role") from None
    membership = membership_of(event, user)
    current = Role(membership.role) if membership is not None else None
    if keep_higher and membership is not None and ROLE_RANK[Role(membership.role)] >= ROLE_RANK[role]:
        return membership
    if not user.is_verified and (current is None or ROLE_RANK[role] > ROLE_RANK[current]):
        return _hold_role(event, user=user, role=role, actor=actor, keep_higher=keep_higher)
    if membership is None:
        membership = EventMembership(event_id=event.id, user_id=user.id, role=role)
        db.session.add(membership)
    else:
        if actor is not None and actor.id == user.id and membership.role == Role.ORGANISER and role != Role.ORGANISER:
            raise NotAllowed(_("You cannot remove your own organiser role."), field="role")
        membership.role = role
    pending = pending_role_of(event, user)
    if pending is not None:
        db.session.delete(pending)  # a decision that applied replaces the one that waited
    db.session.flush()
    user.forget_roles()
    _notify_membership_changed(user.id, event.id)
    return membership


def _hold_role(event: Event, *, user: User, role: Role, actor: User | None, keep_higher: bool) -> PendingRole:
    pending = pending_role_of(event, user)
    if pending is None:
        pending = PendingRole(event_id=event.id, user_id=user.id, role=role)
        db.session.add(pending)
    elif keep_higher and ROLE_RANK[Role(pending.role)] >= ROLE_RANK[role]:
        return pending
    pending.role, pending.keep_higher = role, keep_higher
    pending.granted_by_id = actor.id if actor is not None else None
    db.session.flush()
    return pending


def pending_role_of(event: Event, user: User) -> PendingRole | None:
    return db.session.scalar(
        select(PendingRole).where(PendingRole.event_id == event.id, PendingRole.user_id == user.id))


def apply_pending_roles(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Receiver of `address_verified`: the roles that waited for the address apply now, in that unit of work.

    Side effects: membership change signals after the commit (via `set_role`)."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_verified:
        return
    for pending in list(db.session.scalars(select(PendingRole).where(PendingRole.user_id == user_id)
                                           .order_by(PendingRole.id))):
        event, role, keep_higher = pending.event, pending.role, pending.keep_higher
        db.session.delete(pending)
        db.session.flush()
        set_role(event, user=user, role=role, keep_higher=keep_higher)


def people_overview(event: Event) -> dict[str, Any]:
    """The people page: counts per role, the team (with confirmed or not), roles waiting for a confirmation."""
    counts = dict(db.session.execute(
        select(EventMembership.role, func.count()).where(EventMembership.event_id == event.id)
        .group_by(EventMembership.role)).all())
    unconfirmed = db.session.scalar(
        select(func.count()).select_from(EventMembership).join(User, User.id == EventMembership.user_id)
        .where(EventMembership.event_id == event.id, User.email_verified_at.is_(None))) or 0
    staff = db.session.execute(
        select(User, EventMembership.role).join(EventMembership, EventMembership.user_id == User.id)
        .where(EventMembership.event_id == event.id, EventMembership.role != Role.ATTENDEE).order_by(User.name)
    ).all()
    pending = db.session.execute(
        select(User, PendingRole.role).join(PendingRole, PendingRole.user_id == User.id)
        .where(PendingRole.event_id == event.id).order_by(User.name)).all()
    return {"counts": counts, "unconfirmed": unconfirmed, "staff": staff, "pending": pending}


def _notify_membership_changed(user_id: int, event_id: int) -> None:

    after_commit.defer(membership_changed.send, current_app._get_current_object(),  # type: ignore[attr-defined]
                       user_id=user_id, event_id=event_id)


def event_payload(event: Event) -> dict[str, Any]:
    """One JSON shape for an event, used by the API."""
    return {
        "slug": event.slug,
        "title": event.title,
        "description": event.description,
        "start": event.start_date.isoformat(),
        "end": event.end_date.isoformat(),
        "timezone": event.timezone,
        "language": event.language,
        "registration": event.registration_mode,
        "links": "members" if event.links_for_members_only else "public",
        "published": event.is_published,
    }


# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The account's registrations and roles, and roles that wait for its confirmed address."""
    memberships = db.session.execute(
        select(EventMembership, Event).join(Event, Event.id == EventMembership.event_id)
        .where(EventMembership.user_id == user_id).order_by(EventMembership.id)).all()
    pending = db.session.execute(
        select(PendingRole, Event).join(Event, Event.id == PendingRole.event_id)
        .where(PendingRole.user_id == user_id).order_by(PendingRole.id)).all()
    return {
        "registrations": [{"event": event.slug, "event_title": event.title, "role": membership.role,
                           "since": membership.created_at.isoformat()} for membership, event in memberships],
        "pending_roles": [{"event": event.slug, "role": row.role, "since": row.created_at.isoformat()}
                          for row, event in pending],
    }


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Refuse to delete the last organiser of an event (nobody could manage it any more); otherwise end every
    registration and waiting role of the account. Side effect after the commit: `membership_changed`."""
    organised = db.session.scalars(select(EventMembership.event_id).where(
        EventMembership.user_id == user_id, EventMembership.role == Role.ORGANISER)).all()
    for event_id in organised:
        others = db.session.scalar(select(func.count()).select_from(EventMembership).where(
            EventMembership.event_id == event_id, EventMembership.role == Role.ORGANISER,
            EventMembership.user_id != user_id))
        if not others:
            event = db.session.get(Event, event_id)
            raise Conflict(_("You are the only organiser of “%(title)s”. Make someone else an organiser of the "
                             "event first; then you can delete your account.", title=event.title if event else ""),
                           code="last_organiser")
    memberships = db.session.scalars(select(EventMembership).where(EventMembership.user_id == user_id)).all()
    for membership in memberships:
        db.session.delete(membership)
        _notify_membership_changed(user_id, membership.event_id)
    for pending in db.session.scalars(select(PendingRole).where(PendingRole.user_id == user_id)).all():
        db.session.delete(pending)
    db.session.flush()


# --- branding ---------------------------------------------------------------------------------------

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_PIXELS = 16_000_000
LOGO_SIZE = (640, 160)  # shown at most 40 px high in the header; twice that for sharp high-density screens
#: The colours the accent is used with (static/css/main.css): white text on accent (header, buttons) and accent
#: text on the page background (#ffffff) and on boxes (--surface).
ACCENT_PAIRS = (("#ffffff", _l("white text and the page background")), ("#f4f6f8", _l("the grey boxes")))
FOOTER_URL = re.compile(r"^(https://[^\s\"'<>\\]+|mailto:[^\s\"'<>\\@]+@[^\s\"'<>\\@]+)$")
FOOTER_FIELDS = ("imprint_url", "privacy_url", "contact_url")


def check_accent_color(color: Any) -> str | None:
    """None (the platform's colour) or a #rrggbb colour readable with every colour it is used with (WCAG AA)."""
    if color is None or (isinstance(color, str) and not color.strip()):
        return None
    if not isinstance(color, str) or not COLOR.match(color.strip()):
        raise ValidationFailed(_("The accent colour must look like #1d4f91."), field="accent_color")
    color = color.strip().lower()
    for other, label in ACCENT_PAIRS:
        ratio = contrast_ratio(color, other)
        if ratio < AA_NORMAL_TEXT:
            raise ValidationFailed(_(
                "The accent colour %(color)s has a contrast of only %(ratio)s:1 with %(other)s; readable text "
                "needs at least 4.5:1 (WCAG AA). Please choose a darker colour.",
                color=color, ratio=format_decimal(int(ratio * 100) / 100, format="0.00"), other=str(label)),
                field="accent_color", code="low_contrast")
    return color


def logos_dir() -> Path:
    return Path(str(get_settings().upload_dir)) / "logos"


def process_logo(source: IO[bytes]) -> bytes:
    """The logo re-encoded as PNG (transparency kept, metadata and trailing data dropped), at most LOGO_SIZE."""
    try:
        image = decode_image(source, max_bytes=LOGO_MAX_BYTES, max_pixels=LOGO_MAX_PIXELS)
    except ImageRefused as refused:
        messages = {
            "too_large": _("The logo may be at most %(mb)d MB.", mb=LOGO_MAX_BYTES // (1024 * 1024)),
            "empty": _("The logo file is empty."),
            "too_many_pixels": _("The logo has too many pixels (at most %(n)d megapixels).",
                                 n=LOGO_MAX_PIXELS // 1_000_000),
        }
        message = messages.get(refused.reason, _("The logo must be a PNG, JPEG, WebP or GIF image."))
        raise ValidationFailed(message, field="logo") from None
    image.thumbnail(LOGO_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def update_branding(event: Event, *, accent_color: Any, logo: IO[bytes] | None = None, remove_logo: bool = False,
                    imprint_url: Any = None, privacy_url: Any = None, contact_url: Any = None,
                    actor: User | None) -> Event:
    """Set the event's accent colour, logo and footer links; all checked before anything changes.

    Side effects: a new logo file is written now; the replaced one is removed after the commit.
    """
    color = check_accent_color(accent_color)
    links = {}
    for field, value in zip(FOOTER_FIELDS, (imprint_url, privacy_url, contact_url), strict=True):
        text = (value or "").strip() if isinstance(value, str) or value is None else None
        if text is None or len(text) > 500 or (text and not FOOTER_URL.match(text)):
            raise ValidationFailed(_("A link must start with https:// (or mailto: for the contact) and have at "
                                     "most 500 characters."), field=field)
        links[field] = text or None
    new_logo = store_file(logos_dir(), process_logo(logo), ".png") if logo is not None else None
    event.accent_color = color
    for field, text in links.items():
        setattr(event, field, text)
    replace_stored_file(event, "logo_filename", logos_dir(), new_logo, remove=remove_logo)
    db.session.flush()
    return event
