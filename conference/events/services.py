"""Event rules: creating events, registering attendees, giving roles. Services flush, never commit."""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import date
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from conference.auth.models import User
from conference.core import after_commit
from conference.core.errors import Conflict, NotAllowed, ValidationFailed
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
