"""Slide decks: every upload is a new version of a session's presentation, stored under a server-generated name."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.agenda.models import ConferenceSession
from conference.auth.models import User
from conference.core.db import UTCDateTime, utcnow
from conference.events.models import Event
from conference.extensions import db


class VisibilityMode(StrEnum):
    AUTOMATIC = "automatic"  # private until the session's last slot ends, then published
    PUBLISHED = "published"  # an organiser published it by hand
    HIDDEN = "hidden"  # an organiser hid it by hand


class Visibility(StrEnum):
    PRIVATE = "private"
    PUBLISHED = "published"


class ThumbnailState(StrEnum):
    NONE = "none"  # not a PDF: no preview
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class Presentation(db.Model):  # type: ignore[name-defined,misc]
    """One uploaded version of a session's slides."""

    __tablename__ = "presentations"
    __table_args__ = (UniqueConstraint("session_id", "version", name="uq_presentations_session_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"),
                                            index=True)
    version: Mapped[int] = mapped_column()
    original_filename: Mapped[str] = mapped_column(String(200))  # for display and the download header only
    stored_filename: Mapped[str] = mapped_column(String(80), unique=True)  # server-generated, in UPLOAD_DIR
    file_type: Mapped[str] = mapped_column(String(8))  # pdf, pptx, odp, ppt, key
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    visibility_mode: Mapped[str] = mapped_column(String(10), default=VisibilityMode.AUTOMATIC)
    thumbnail_state: Mapped[str] = mapped_column(String(8), default=ThumbnailState.NONE)
    thumbnail_filename: Mapped[str | None] = mapped_column(String(80))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship()
    session: Mapped[ConferenceSession] = relationship()
    uploaded_by: Mapped[User | None] = relationship()

    def visibility(self, session_ends_at: datetime | None, now: datetime) -> Visibility:
        """Published by hand, hidden by hand, or published once the session has ended (its last slot)."""
        if self.visibility_mode == VisibilityMode.PUBLISHED:
            return Visibility.PUBLISHED
        if self.visibility_mode == VisibilityMode.HIDDEN:
            return Visibility.PRIVATE
        if session_ends_at is not None and now >= session_ends_at:
            return Visibility.PUBLISHED
        return Visibility.PRIVATE

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.file_type]


CONTENT_TYPES = {
    "pdf": "application/pdf",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "ppt": "application/vnd.ms-powerpoint",
    "key": "application/vnd.apple.keynote",
}
