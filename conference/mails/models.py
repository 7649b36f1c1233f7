"""What people chose to be mailed about, and markers that make each reminder and notice go out once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db

DEFAULT_REMINDER_MINUTES = 15


class MailPreference(db.Model):  # type: ignore[name-defined,misc]
    """One person's opt-ins for one event; no row means nothing is sent (both are off by default)."""

    __tablename__ = "mail_preferences"
    __table_args__ = (UniqueConstraint("user_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    reminder_minutes: Mapped[int | None] = mapped_column()  # None: no reminders
    wants_slides_notice: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SentReminder(db.Model):  # type: ignore[name-defined,misc]
    """A reminder went out (or was queued): the unique pair keeps several workers from sending it twice."""

    __tablename__ = "sent_reminders"
    __table_args__ = (UniqueConstraint("user_id", "session_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the released start it announced
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlidesNotice(db.Model):  # type: ignore[name-defined,misc]
    """The "slides are now available" mails of a session went out: once per session."""

    __tablename__ = "slides_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), unique=True)
    recipients: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnnouncementMail(db.Model):  # type: ignore[name-defined,misc]
    """An organisers' announcement sent by mail: the record, and what the hourly limit counts.

    Its mails are queued by a job (`mail.announcement`) in batches ordered by user id: `queued_through_user_id`
    is how far it got (a retry goes on from there, nobody gets the mail twice), `queued_at` when it finished."""

    __tablename__ = "announcement_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    recipients: Mapped[int] = mapped_column(default=0)  # mails queued so far
    queued_through_user_id: Mapped[int] = mapped_column(default=0)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
