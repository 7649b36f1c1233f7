"""What an event asks at registration, and each registered person's answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db

#: The sectors asked by default (the organiser may change the list per event).
DEFAULT_SECTORS = ("Wirtschaft", "Wissenschaft", "Politik und Verwaltung", "Sonstiges")


class RegistrationSettings(db.Model):  # type: ignore[name-defined,misc]
    """The questions an event asks at registration and whether it shows a public participants list."""

    __tablename__ = "registration_settings"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    asks_organisation: Mapped[bool] = mapped_column(default=False)
    asks_sector: Mapped[bool] = mapped_column(default=False)
    sectors: Mapped[str] = mapped_column(Text, default="\n".join(DEFAULT_SECTORS))  # one per line
    asks_listing_consent: Mapped[bool] = mapped_column(default=False)
    # The public participants list (only people who consented; name and organisation).
    has_public_list: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def sector_list(self) -> list[str]:
        return [line.strip() for line in (self.sectors or "").splitlines() if line.strip()]

    @property
    def asks_anything(self) -> bool:
        return self.asks_organisation or self.asks_sector or self.asks_listing_consent


class RegistrationAnswer(db.Model):  # type: ignore[name-defined,misc]
    """One person's answers to an event's registration questions (changeable by them)."""

    __tablename__ = "registration_answers"
    __table_args__ = (UniqueConstraint("event_id", "user_id", name="uq_registration_answers_event_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation: Mapped[str | None] = mapped_column(String(200))
    sector: Mapped[str | None] = mapped_column(String(100))
    is_listed: Mapped[bool] = mapped_column(default=False)  # consent to appear in the public participants list
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
