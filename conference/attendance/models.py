"""Attendance records: presence per person, room and minute; reactions and slide downloads as counters;
issued certificates of attendance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db

ROOM_LENGTH = 80


class PresenceMinute(db.Model):  # type: ignore[name-defined,misc]
    """One person present in one room (a session's or the lobby) during one minute.

    `minute` counts whole minutes since 1970-01-01 UTC (unix time // 60): small, and `minute / 5` buckets the
    day in every database. The key makes a person count once however many tabs, sockets or workers saw them.
    """

    __tablename__ = "attendance_minutes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    room: Mapped[str] = mapped_column(String(ROOM_LENGTH), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))

    __table_args__ = (Index("ix_attendance_minutes_event_room_minute", "event_id", "room", "minute"),)


class ReactionMinute(db.Model):  # type: ignore[name-defined,misc]
    """How many reactions a room received in one minute (every worker adds its own count)."""

    __tablename__ = "attendance_reactions"

    room: Mapped[str] = mapped_column(String(ROOM_LENGTH), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    count: Mapped[int] = mapped_column(default=0)


class SlideDownloadDay(db.Model):  # type: ignore[name-defined,misc]
    """Downloads of one presentation file on one day (UTC), counted in memory and added once a minute."""

    __tablename__ = "attendance_downloads"

    presentation_id: Mapped[int] = mapped_column(ForeignKey("presentations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), index=True)
    count: Mapped[int] = mapped_column(default=0)


class Certificate(db.Model):  # type: ignore[name-defined,misc]
    """An issued certificate of attendance: what it states, frozen at issue, behind a random code.

    The verification page shows exactly this record, so a certificate stays checkable after the presence
    minutes it was made from are deleted by the retention policy.
    """

    __tablename__ = "attendance_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    sessions_json: Mapped[str] = mapped_column(Text, default="[]")  # [{"title", "minutes"}] by start
    total_minutes: Mapped[int] = mapped_column(default=0)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("event_id", "user_id"),)
