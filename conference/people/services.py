"""People rules: registration questions, answers, the organisers' attendee list. Services flush, never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from conference.auth.models import User
from conference.core.errors import ValidationFailed
from conference.core.permissions import Role
from conference.events.models import Event, EventMembership
from conference.events.services import register_attendee
from conference.extensions import db
from conference.people.models import RegistrationAnswer, RegistrationSettings

MAX_SECTORS = 20
MAX_SECTOR_LENGTH = 100
MAX_ORGANISATION_LENGTH = 200
MAX_SEARCH_LENGTH = 100


def settings_for(event: Event) -> RegistrationSettings:
    """The event's registration settings; an unsaved default (nothing asked) when the organiser set none."""
    settings = db.session.get(RegistrationSettings, event.id)
    return settings if settings is not None else RegistrationSettings(
        event_id=event.id, asks_organisation=False, asks_sector=False, asks_listing_consent=False,
        has_public_list=False, sectors="\n".join(_default_sectors()))


def _default_sectors() -> list[str]:
    from conference.people.models import DEFAULT_SECTORS

    return list(DEFAULT_SECTORS)


def update_settings(event: Event, *, asks_organisation: bool, asks_sector: bool, sectors: str,
                    asks_listing_consent: bool, has_public_list: bool) -> RegistrationSettings:
    """Save the event's registration questions. The sector list: one per line, 1 to 20, at most 100 characters
    each, no duplicates. A public list needs the consent question (nobody could be on it otherwise)."""
    lines = [line.strip() for line in (sectors or "").splitlines() if line.strip()]
    if asks_sector and not lines:
        raise ValidationFailed(_("Please give at least one sector."), field="sectors")
    if len(lines) > MAX_SECTORS or any(len(line) > MAX_SECTOR_LENGTH for line in lines):
        raise ValidationFailed(_("At most %(n)d sectors of at most %(length)d characters each.", n=MAX_SECTORS,
                                 length=MAX_SECTOR_LENGTH), field="sectors")
    if len({line.casefold() for line in lines}) != len(lines):
        raise ValidationFailed(_("Each sector may appear only once."), field="sectors")
    if has_public_list and not asks_listing_consent:
        raise ValidationFailed(_("A public participants list needs the consent question: only people who agreed "
                                 "appear on it."), field="has_public_list")
    settings = db.session.get(RegistrationSettings, event.id)
    if settings is None:
        settings = RegistrationSettings(event_id=event.id)
        db.session.add(settings)
    settings.asks_organisation, settings.asks_sector = bool(asks_organisation), bool(asks_sector)
    settings.sectors = "\n".join(lines)
    settings.asks_listing_consent, settings.has_public_list = bool(asks_listing_consent), bool(has_public_list)
    db.session.flush()
    return settings


def answer_of(event: Event, user: Any) -> RegistrationAnswer | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(select(RegistrationAnswer).where(RegistrationAnswer.event_id == event.id,
                                                              RegistrationAnswer.user_id == user.id))


def save_answers(event: Event, *, user: User, organisation: Any = None, sector: Any = None,
                 is_listed: Any = False) -> RegistrationAnswer:
    """Store `user`'s answers to the questions the event asks (others are left empty). The person must be
    registered for the event. A sector must be one of the event's list."""
    settings = settings_for(event)
    if db.session.scalar(select(EventMembership.id).where(EventMembership.event_id == event.id,
                                                          EventMembership.user_id == user.id)) is None:
        raise ValidationFailed(_("Please register for the event first."), code="not_registered")
    organisation_text = organisation.strip() if isinstance(organisation, str) else ""
    if len(organisation_text) > MAX_ORGANISATION_LENGTH:
        raise ValidationFailed(_("The organisation may have at most %(n)d characters.", n=MAX_ORGANISATION_LENGTH),
                               field="organisation")
    sector_text = sector.strip() if isinstance(sector, str) else ""
    if settings.asks_sector and sector_text and sector_text not in settings.sector_list:
        raise ValidationFailed(_("Please choose one of the sectors."), field="sector")
    answer = answer_of(event, user)
    if answer is None:
        answer = RegistrationAnswer(event_id=event.id, user_id=user.id)
        db.session.add(answer)
    answer.organisation = (organisation_text or None) if settings.asks_organisation else None
    answer.sector = (sector_text or None) if settings.asks_sector else None
    answer.is_listed = bool(is_listed) if settings.asks_listing_consent else False
    db.session.flush()
    return answer


def register_with_answers(event: Event, *, user: User, code: str | None, organisation: Any = None,
                          sector: Any = None, is_listed: Any = False) -> EventMembership:
    """Register `user` (`events.services.register_attendee`: same rules and signals) and store the answers,
    in one unit of work: a wrong answer registers nobody."""
    membership = register_attendee(event, user=user, code=code)
    save_answers(event, user=user, organisation=organisation, sector=sector, is_listed=is_listed)
    return membership


# --- the organisers' list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttendeeRow:
    user_id: int
    name: str
    email: str
    organisation: str
    sector: str
    role: str
    registered_at: datetime
    is_confirmed: bool
    is_listed: bool


def attendee_rows(event: Event, *, sector: str | None = None, role: str | None = None,
                  search: str | None = None) -> list[AttendeeRow]:
    """Everyone registered for the event (any role), by name; filtered by sector ("-" for none given), role and a
    search in name and organisation (case-insensitive). Deleted accounts have no membership, so never appear."""
    query = (select(User, EventMembership, RegistrationAnswer)
             .join(EventMembership, EventMembership.user_id == User.id)
             .outerjoin(RegistrationAnswer, (RegistrationAnswer.user_id == User.id)
                        & (RegistrationAnswer.event_id == event.id))
             .where(EventMembership.event_id == event.id))
    if role in set(Role):
        query = query.where(EventMembership.role == role)
    if sector == "-":
        query = query.where(or_(RegistrationAnswer.sector.is_(None), RegistrationAnswer.id.is_(None)))
    elif sector:
        query = query.where(RegistrationAnswer.sector == sector)
    text = (search or "").strip()[:MAX_SEARCH_LENGTH].casefold()
    rows = []
    for user, membership, answer in db.session.execute(query.order_by(func.lower(User.name), User.id)).all():
        organisation = (answer.organisation if answer is not None else None) or ""
        if text and text not in user.name.casefold() and text not in organisation.casefold():
            continue  # in Python: SQLite's lower() knows only ASCII, and the list is one event's
        rows.append(AttendeeRow(user_id=user.id, name=user.name, email=user.email, organisation=organisation,
                                sector=(answer.sector if answer is not None else None) or "", role=membership.role,
                                registered_at=membership.created_at, is_confirmed=user.email_verified_at is not None,
                                is_listed=bool(answer is not None and answer.is_listed)))
    return rows


def sector_counts(event: Event) -> dict[str, int]:
    """Registered people per sector ("" for none given)."""
    return {sector or "": count for sector, count in db.session.execute(
        select(RegistrationAnswer.sector, func.count()).select_from(EventMembership)
        .outerjoin(RegistrationAnswer, (RegistrationAnswer.user_id == EventMembership.user_id)
                   & (RegistrationAnswer.event_id == event.id))
        .where(EventMembership.event_id == event.id).group_by(RegistrationAnswer.sector)).all()}


def public_participants(event: Event) -> list[tuple[str, str]]:
    """(name, organisation) of the people who consented, when the organiser shows the list; else empty."""
    settings = settings_for(event)
    if not (settings.has_public_list and settings.asks_listing_consent):
        return []
    rows = db.session.execute(
        select(User.name, RegistrationAnswer.organisation)
        .join(RegistrationAnswer, RegistrationAnswer.user_id == User.id)
        .join(EventMembership, (EventMembership.user_id == User.id) & (EventMembership.event_id == event.id))
        .where(RegistrationAnswer.event_id == event.id, RegistrationAnswer.is_listed.is_(True),
               User.deleted_at.is_(None))
        .order_by(func.lower(User.name), User.id)).all()
    return [(name, organisation or "") for name, organisation in rows]


# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The account's answers to registration questions, per event."""
    rows = db.session.execute(
        select(RegistrationAnswer, Event).join(Event, Event.id == RegistrationAnswer.event_id)
        .where(RegistrationAnswer.user_id == user_id).order_by(RegistrationAnswer.id)).all()
    return {"registration_answers": [
        {"event": event.slug, "organisation": answer.organisation, "sector": answer.sector,
         "listed_publicly": answer.is_listed, "updated_at": answer.updated_at.isoformat()}
        for answer, event in rows]}


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Delete every answer of the account (organisation, sector, consent)."""
    for answer in db.session.scalars(select(RegistrationAnswer).where(RegistrationAnswer.user_id == user_id)):
        db.session.delete(answer)
    db.session.flush()
