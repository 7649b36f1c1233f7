"""Agenda model: the agenda owns time and place (slots), sessions own content."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.auth.models import User
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


EMBEDDED_STREAM_KINDS = frozenset({StreamKind.YOUTUBE, StreamKind.VIMEO, StreamKind.PEERTUBE, StreamKind.IFRAME})
LINK_STREAM_KINDS = frozenset({StreamKind.JITSI, StreamKind.BIGBLUEBUTTON})


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

    @property
    def is_embedded_player(self) -> bool:
        """A third-party player that may load only after the viewer consents (not a meeting link)."""
        return self.stream_kind in EMBEDDED_STREAM_KINDS


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
    __table_args__ = (UniqueConstraint("event_id", "import_guid", name="uq_conference_sessions_event_import_guid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    guid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    # The frab guid of the schedule file the session was imported from (pretalx, frab, another instance):
    # a re-import matches on it. Our own `guid` stays ours, so exports keep their guids stable.
    import_guid: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    abstract: Mapped[str] = mapped_column(Text, default="")  # Markdown
    kind: Mapped[str] = mapped_column(String(16), default=SessionKind.TALK)
    language: Mapped[str] = mapped_column(String(5), default="de")
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"), index=True)
    is_cancelled: Mapped[bool] = mapped_column(default=False)
    recording_url: Mapped[str | None] = mapped_column(String(500))  # shown after the session
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


class AgendaRelease(db.Model):  # type: ignore[name-defined,misc]
    """A published, immutable version of the agenda: what public pages and exports show.

    `snapshot` is the whole programme as JSON (rooms, tracks, sessions with slots and speakers, UTC times),
    `changes` the change log against the previous release (added, moved, changed, cancelled sessions).
    """

    __tablename__ = "agenda_releases"
    __table_args__ = (
        UniqueConstraint("event_id", "sequence", name="uq_agenda_releases_event_sequence"),
        UniqueConstraint("event_id", "name", name="uq_agenda_releases_event_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(60))
    changes: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    snapshot: Mapped[str] = mapped_column(Text, deferred=True)  # JSON; large, loaded only when needed
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    event: Mapped[Event] = relationship()
    published_by: Mapped[User | None] = relationship()


class StarredSession(db.Model):  # type: ignore[name-defined,misc]
    """A session in a person's own agenda."""

    __tablename__ = "starred_sessions"
    __table_args__ = (UniqueConstraint("user_id", "session_id", name="uq_starred_sessions_user_session"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[ConferenceSession] = relationship()


class CalendarFeed(db.Model):  # type: ignore[name-defined,misc]
    """A person's secret calendar address for one event.

    The URL token is an HMAC of `nonce` under the app's secret key: the database alone does not reveal it,
    yet the page can show the same address (and its QR code) again. Revoking sets `revoked_at`.
    """

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
    event: Mapped[Event] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
