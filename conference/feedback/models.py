"""Session feedback, the organisers' session summaries and the settings of an event's documentation page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db


class SessionFeedback(db.Model):  # type: ignore[name-defined,misc]
    """One registered person's rating (1-5) and optional comment of one session (changeable)."""

    __tablename__ = "session_feedback"
    __table_args__ = (UniqueConstraint("session_id", "user_id", name="uq_session_feedback_session_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    shows_name: Mapped[bool] = mapped_column(default=False)  # organisers see the name only when ticked
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SessionSummary(db.Model):  # type: ignore[name-defined,misc]
    """The organisers' short summary of a session for the documentation page (Markdown)."""

    __tablename__ = "session_summaries"

    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"),
                                            primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EventDocumentation(db.Model):  # type: ignore[name-defined,misc]
    """Whether the event's documentation page is public, which figures it shows, and the survey link."""

    __tablename__ = "event_documentation"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    is_published: Mapped[bool] = mapped_column(default=False)
    survey_url: Mapped[str | None] = mapped_column(String(500))
    shows_registered: Mapped[bool] = mapped_column(default=False)
    shows_attended: Mapped[bool] = mapped_column(default=False)
    shows_sessions: Mapped[bool] = mapped_column(default=False)
    shows_questions: Mapped[bool] = mapped_column(default=False)
    shows_slides: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
