"""Legal texts (every saved change is a new, immutable version) and consents to the privacy notice."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db


class LegalKind(StrEnum):
    IMPRESSUM = "impressum"
    PRIVACY = "privacy"


class ConsentSource(StrEnum):
    REGISTRATION = "registration"  # the checkbox of the registration form
    PROMPT = "prompt"  # the page that asks again after a new version
    OPERATOR = "operator"  # recorded by an operator's command (the demo's invented accounts)


class LegalText(db.Model):  # type: ignore[name-defined,misc]
    """One version of a legal page: of the deployment (`event_id` None) or of one event.

    Rows are never changed: a saved change appends the next `number`, so a consent always points at the exact
    text that was accepted. The highest number is the current text; an empty body means "no page of its own"
    (an event page then shows the deployment's, and an empty deployment privacy notice asks nobody to accept).
    """

    __tablename__ = "legal_texts"
    __table_args__ = (
        UniqueConstraint("event_id", "kind", "number", name="uq_legal_texts_event_kind_number"),
        # NULLs are distinct in a unique constraint: the deployment's own versions need a partial index.
        Index("uq_legal_texts_site_kind_number", "kind", "number", unique=True,
              sqlite_where=text("event_id IS NULL"), postgresql_where=text("event_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[int]
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    @property
    def is_empty(self) -> bool:
        return not self.body.strip()


class PrivacyConsent(db.Model):  # type: ignore[name-defined,misc]
    """A person accepted one version of the deployment's privacy notice (kept while the account exists)."""

    __tablename__ = "privacy_consents"
    __table_args__ = (UniqueConstraint("user_id", "legal_text_id", name="uq_privacy_consents_user_text"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    legal_text_id: Mapped[int] = mapped_column(ForeignKey("legal_texts.id", ondelete="CASCADE"), index=True)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(16))


def can_edit_legal_texts(user: Any, event: Any | None) -> bool:
    """Site administrators edit the deployment's pages; an event's organisers (and administrators) its own."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if event is None:
        return bool(getattr(user, "is_admin", False))
    from conference.core.permissions import Permission, has_permission

    return has_permission(user, event, Permission.MANAGE_EVENT)
