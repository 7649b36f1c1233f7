"""Events and memberships (a person's role in one event)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.auth.models import User
from conference.core.db import UTCDateTime, utcnow
from conference.core.permissions import Role
from conference.extensions import db


class RegistrationMode(StrEnum):
    OPEN = "open"
    CODE = "code"  # attendees need the organiser's registration code
    CLOSED = "closed"


class LinkVisibility(StrEnum):
    """Who sees the stream and meeting links of the event's sessions."""

    AUTO = "auto"  # members only when registration is restricted (code or closed), public when it is open
    PUBLIC = "public"
    MEMBERS = "members"  # people registered for the event (any role) and site administrators


class Event(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Berlin")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(5), default="de")
    is_published: Mapped[bool] = mapped_column(default=False)
    registration_mode: Mapped[str] = mapped_column(String(10), default=RegistrationMode.OPEN)
    registration_code: Mapped[str | None] = mapped_column(String(64))
    # The retention policy: days after the event's end until each kind of record is deleted (None: kept).
    # `conference.live.retention` applies it; the event's privacy page states it.
    chat_retention_days: Mapped[int | None] = mapped_column(default=None)  # chat messages and their reports
    question_retention_days: Mapped[int | None] = mapped_column(default=None)  # questions, answers, their reports
    vote_retention_days: Mapped[int | None] = mapped_column(default=None)  # who voted for which question
    report_retention_days: Mapped[int | None] = mapped_column(default=None)  # all reports, mutes and bans
    mail_log_retention_days: Mapped[int | None] = mapped_column(default=None)  # the event's mails and markers
    attendance_retention_days: Mapped[int | None] = mapped_column(default=None)  # presence minutes, certificates
    feedback_retention_days: Mapped[int | None] = mapped_column(default=None)  # session ratings and comments
    # A certificate of attendance needs at least this many minutes present in the event's rooms.
    certificate_min_minutes: Mapped[int] = mapped_column(default=30, server_default="30")
    link_visibility: Mapped[str] = mapped_column(String(10), default=LinkVisibility.AUTO)
    # The organisers mark the published slides as the event's record: they then stay when their uploader deletes
    # the account (unlinked from it); otherwise a deleted account takes its slides with it.
    keeps_slides_as_record: Mapped[bool] = mapped_column(default=False)
    # Branding: an accent colour (#rrggbb, checked for contrast), a logo (re-encoded PNG), a header image
    # (re-encoded WebP, a banner on the public pages) and footer links.
    accent_color: Mapped[str | None] = mapped_column(String(7))
    logo_filename: Mapped[str | None] = mapped_column(String(64))
    header_image_filename: Mapped[str | None] = mapped_column(String(64))
    imprint_url: Mapped[str | None] = mapped_column(String(500))
    privacy_url: Mapped[str | None] = mapped_column(String(500))
    contact_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[EventMembership]] = relationship(
        back_populates="event", cascade="all, delete-orphan"
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def starts_at(self) -> datetime:
        """The first moment of the first day, in UTC."""
        return datetime.combine(self.start_date, time.min, self.zone).astimezone(ZoneInfo("UTC"))

    @property
    def ends_at(self) -> datetime:
        """The end of the last day (midnight after it), in UTC."""
        return datetime.combine(self.end_date + timedelta(days=1), time.min, self.zone).astimezone(
            ZoneInfo("UTC")
        )

    @property
    def links_for_members_only(self) -> bool:
        """Whether stream and meeting links are kept from people not registered for the event."""
        if self.link_visibility == LinkVisibility.PUBLIC:
            return False
        if self.link_visibility == LinkVisibility.MEMBERS:
            return True
        return self.registration_mode != RegistrationMode.OPEN  # AUTO, and any unknown value: the safe side

    def is_past(self, today: date) -> bool:
        return self.end_date < today

    def days(self) -> list[date]:
        count = (self.end_date - self.start_date).days + 1
        return [self.start_date + timedelta(days=i) for i in range(count)]

    def __repr__(self) -> str:
        return f"<Event {self.slug}>"


class EventMembership(db.Model):  # type: ignore[name-defined,misc]
    """A person's role in one event; registering as an attendee creates one."""

    __tablename__ = "event_memberships"
    __table_args__ = (UniqueConstraint("event_id", "user_id", name="uq_event_memberships_event_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.ATTENDEE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class PendingRole(db.Model):  # type: ignore[name-defined,misc]
    """A role given to an account whose owner has not confirmed the address yet; it applies at confirmation.

    Kept apart from `EventMembership` so that no permission check can read it by mistake."""

    __tablename__ = "pending_roles"
    __table_args__ = (UniqueConstraint("event_id", "user_id", name="uq_pending_roles_event_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    keep_higher: Mapped[bool] = mapped_column(default=False)  # an import or invitation never lowers a role
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
