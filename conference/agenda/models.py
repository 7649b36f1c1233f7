"""Agenda model: the agenda owns time and place (slots), sessions own content."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.core.db import UTCDateTime, utcnow
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile


class StreamKind(StrEnum):
    HLS = "hls"
    YOUTUBE = "youtube"
    VIMEO = "vimeo"
    PEERTUBE = "peertube"
    IFRAME = "iframe"
    JITSI = "jitsi"
    BIGBLUEBUTTON = "bigbluebutton"


class SessionKind(StrEnum):
    KEYNOTE = "keynote"
    TALK = "talk"
    PANEL = "panel"
    WORKSHOP = "workshop"
    BREAK = "break"
    NETWORKING = "networking"


class SpeakerRole(StrEnum):
    SPEAKER = "speaker"
    MODERATOR = "moderator"


class Room(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(default=0)
    stream_kind: Mapped[str | None] = mapped_column(String(16))
    stream_url: Mapped[str | None] = mapped_column(String(500))

    event: Mapped[Event] = relationship()
    slots: Mapped[list[TimetableSlot]] = relationship(back_populates="room")


class Track(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    color: Mapped[str] = mapped_column(String(7), default="#3b6ea5")  # #rrggbb

    event: Mapped[Event] = relationship()


class ConferenceSession(db.Model):  # type: ignore[name-defined,misc]
    """A keynote, talk, panel, break...: its content. Time and place are in `TimetableSlot`."""

    __tablename__ = "conference_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    guid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    title: Mapped[str] = mapped_column(String(200))
    abstract: Mapped[str] = mapped_column(Text, default="")  # Markdown
    kind: Mapped[str] = mapped_column(String(16), default=SessionKind.TALK)
    language: Mapped[str] = mapped_column(String(5), default="de")
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"), index=True)
    is_cancelled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship()
    track: Mapped[Track | None] = relationship()
    speakers: Mapped[list[SessionSpeaker]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="SessionSpeaker.position"
    )
    slots: Mapped[list[TimetableSlot]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="TimetableSlot.start_at"
    )

    @property
    def chat_room(self) -> str:
        return f"session:{self.id}"

    @property
    def is_break(self) -> bool:
        return self.kind == SessionKind.BREAK


class SessionSpeaker(db.Model):  # type: ignore[name-defined,misc]
    """A speaker's place in a session, ordered, with a role (speaker or moderator)."""

    __tablename__ = "session_speakers"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), index=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speaker_profiles.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=SpeakerRole.SPEAKER)
    position: Mapped[int] = mapped_column(default=0)

    session: Mapped[ConferenceSession] = relationship(back_populates="speakers")
    speaker: Mapped[SpeakerProfile] = relationship(back_populates="session_links")


class TimetableSlot(db.Model):  # type: ignore[name-defined,misc]
    """When and where a session takes place in the working agenda. A break may have one slot per room."""

    __tablename__ = "timetable_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)

    session: Mapped[ConferenceSession] = relationship(back_populates="slots")
    room: Mapped[Room] = relationship(back_populates="slots")

    def overlaps(self, start_at: datetime, end_at: datetime) -> bool:
        return self.start_at < end_at and start_at < self.end_at

    def is_live(self, now: datetime) -> bool:
        return self.start_at <= now < self.end_at
