"""Legal pages and consent rules: versions of the texts, the page a visitor sees, who still has to accept.

Services flush, never commit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, insert, select

from conference.core.db import utcnow
from conference.core.errors import Conflict, ValidationFailed
from conference.extensions import db
from conference.legal.models import ConsentSource, LegalKind, LegalText, PrivacyConsent

if TYPE_CHECKING:
    from conference.auth.models import User
    from conference.events.models import Event

#: A long Datenschutzerklärung has 30,000-40,000 characters; the form's body limit follows from this.
MAX_TEXT_CHARS = 50_000


def current_text(event: Event | None, kind: LegalKind) -> LegalText | None:
    """The latest version of the deployment's (`event` None) or the event's own page; its body may be empty."""
    query = select(LegalText).where(LegalText.kind == kind, _scope(event))
    return db.session.scalar(query.order_by(LegalText.number.desc()).limit(1))


def _scope(event: Event | None) -> Any:
    return LegalText.event_id.is_(None) if event is None else LegalText.event_id == event.id


def page_text(event: Event | None, kind: LegalKind) -> tuple[LegalText | None, bool]:
    """What the public page shows: the event's own text, else the deployment's. (text or None, is the event's)."""
    if event is not None:
        own = current_text(event, kind)
        if own is not None and not own.is_empty:
            return own, True
    site = current_text(None, kind)
    return (site if site is not None and not site.is_empty else None), False


def normalise_text(body: str) -> str:
    """One line-ending style and no trailing blanks, so that re-saving an unchanged form is no change."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def save_texts(event: Event | None, *, texts: dict[LegalKind, str], actor: User) -> list[LegalKind]:
    """Save the pages of the deployment (`event` None) or of `event`; returns the kinds that changed.

    A changed text becomes the next version; an unchanged one is left alone. A new version of the deployment's
    privacy notice asks every account to accept it again (see `pending_privacy_notice`). Permission is the
    caller's (`can_edit_legal_texts`)."""
    cleaned = {kind: normalise_text(body) for kind, body in texts.items()}
    for kind, body in cleaned.items():
        if len(body) > MAX_TEXT_CHARS:
            raise ValidationFailed(_("The text may have at most %(max)d characters.", max=MAX_TEXT_CHARS),
                                   field=kind.value)
    changed = []
    for kind, body in cleaned.items():
        latest = current_text(event, kind)
        if (latest.body if latest is not None else "") == body:
            continue
        db.session.add(LegalText(event_id=event.id if event is not None else None, kind=kind, body=body,
                                 number=(latest.number + 1) if latest is not None else 1, created_by_id=actor.id))
        changed.append(kind)
    db.session.flush()
    return changed


def versions(event: Event | None, kind: LegalKind, *, limit: int = 50) -> list[tuple[LegalText, int]]:
    """The latest versions, newest first, with how many accounts accepted each (deployment privacy notice)."""
    accepted = (select(func.count()).select_from(PrivacyConsent)
                .where(PrivacyConsent.legal_text_id == LegalText.id).scalar_subquery())
    rows = db.session.execute(select(LegalText, accepted).where(LegalText.kind == kind, _scope(event))
                              .order_by(LegalText.number.desc()).limit(limit)).all()
    return [(text, count) for text, count in rows]


# --- consent to the deployment's privacy notice ----------------------------------------------------------


def current_privacy_notice() -> LegalText | None:
    """The version people accept: the deployment's latest privacy notice, unless it is empty (then none)."""
    text = current_text(None, LegalKind.PRIVACY)
    return text if text is not None and not text.is_empty else None


def _latest_site_privacy_id() -> Any:
    return (select(LegalText.id).where(LegalText.event_id.is_(None), LegalText.kind == LegalKind.PRIVACY)
            .order_by(LegalText.number.desc()).limit(1).scalar_subquery())


def pending_privacy_notice(user_id: int) -> int | None:
    """The id of the current privacy notice if `user_id` has not accepted it yet, else None (one query: it is
    asked on every page of a logged-in browser and at every socket connection of one)."""
    accepted = exists().where(PrivacyConsent.user_id == user_id, PrivacyConsent.legal_text_id == LegalText.id)
    row = db.session.execute(select(LegalText.id).where(
        LegalText.id == _latest_site_privacy_id(), func.length(func.trim(LegalText.body)) > 0, ~accepted)).first()
    return int(row[0]) if row is not None else None


def accept_privacy_notice(user: User, *, notice_id: int, source: ConsentSource = ConsentSource.PROMPT) -> None:
    """Record that `user` accepted the privacy notice version `notice_id` (again: no change).

    Only the current version can be accepted: a page opened before a newer one was published is refused."""
    current = current_privacy_notice()
    if current is None or current.id != notice_id:
        raise Conflict(_("A newer version of the privacy notice has been published in the meantime. Please read "
                         "it and accept it again."), code="privacy_notice_changed")
    _record(user.id, current.id, source)


def _record(user_id: int, text_id: int, source: ConsentSource) -> None:
    already = db.session.scalar(select(PrivacyConsent.id).where(PrivacyConsent.user_id == user_id,
                                                                PrivacyConsent.legal_text_id == text_id))
    if already is None:
        db.session.add(PrivacyConsent(user_id=user_id, legal_text_id=text_id, source=source, accepted_at=utcnow()))
        db.session.flush()


def record_registration_consent(user: User | None) -> None:
    """The registration form's checkbox (checked by `consent_required_at_registration` before the account
    exists): record it for a new account. `None` (the address had an account already) records nothing."""
    notice = current_privacy_notice()
    if user is not None and notice is not None:
        _record(user.id, notice.id, ConsentSource.REGISTRATION)


def consent_required_at_registration() -> bool:
    return current_privacy_notice() is not None


def record_consents_for(user_ids: list[int], *, source: ConsentSource = ConsentSource.OPERATOR) -> int:
    """Record consent to the current notice for many accounts at once (the demo's invented people); returns
    how many were new."""
    notice = current_privacy_notice()
    if notice is None or not user_ids:
        return 0
    have = set(db.session.scalars(select(PrivacyConsent.user_id).where(PrivacyConsent.legal_text_id == notice.id)))
    now = utcnow()
    rows = [{"user_id": uid, "legal_text_id": notice.id, "source": source, "accepted_at": now}
            for uid in dict.fromkeys(user_ids) if uid not in have]
    if rows:
        db.session.execute(insert(PrivacyConsent), rows)
    return len(rows)


def consents_payload(user: User) -> list[dict[str, Any]]:
    """The account's consent records, oldest first (for the account's data export)."""
    return _consents_of(user.id)


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """Receiver of `account_data`: the account's privacy-notice consents (versions and times)."""
    return {"privacy_consents": _consents_of(user_id)}


def _consents_of(user_id: int) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(PrivacyConsent, LegalText.number)
        .join(LegalText, and_(LegalText.id == PrivacyConsent.legal_text_id))
        .where(PrivacyConsent.user_id == user_id).order_by(PrivacyConsent.accepted_at, PrivacyConsent.id)).all()
    return [{"privacy_notice_version": number, "accepted_at": consent.accepted_at.isoformat(),
             "source": consent.source} for consent, number in rows]
