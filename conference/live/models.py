"""Live layer models: chat messages, reports, sanctions, room settings, questions, votes, announcements."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db

if TYPE_CHECKING:
    from conference.agenda.models import ConferenceSession
    from conference.auth.models import User

CHAT_TEXT_LIMIT = 2000
QUESTION_TEXT_LIMIT = 500
ANSWER_TEXT_LIMIT = 4000
CLIENT_ID_LIMIT = 64


class SanctionKind(StrEnum):
    MUTE = "mute"  # may read, may not write (chat, questions, votes, reactions)
    BAN = "ban"  # may not join the event's rooms at all


class ChatMessage(db.Model):  # type: ignore[name-defined,misc]
    """One chat message in one room of one event; its id orders the room."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("author_id", "room", "client_id", name="uq_chat_messages_author_room_client"),
        Index("ix_chat_messages_room_id", "room", "id"),
        # chat:history tells a catching-up client which messages were deleted: few rows per room.
        Index("ix_chat_messages_room_deleted_at", "room", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    room: Mapped[str] = mapped_column(String(80))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    author_name: Mapped[str] = mapped_column(String(120))  # as shown when sent
    author_role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_LIMIT))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    author: Mapped[User] = relationship(foreign_keys=[author_id])

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class ChatReport(db.Model):  # type: ignore[name-defined,misc]
    """An attendee's report of a chat message or of a question, waiting in the moderators' queue until resolved.

    One queue for both: moderators resolve a report by deleting the message or hiding the question, or dismiss it.
    """

    __tablename__ = "chat_reports"
    __table_args__ = (
        UniqueConstraint("message_id", "reporter_id", name="uq_chat_reports_message_reporter"),
        UniqueConstraint("question_id", "reporter_id", name="uq_chat_reports_question_reporter"),
        CheckConstraint("(message_id IS NULL) <> (question_id IS NULL)", name="one_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("qa_questions.id", ondelete="CASCADE"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    message: Mapped[ChatMessage | None] = relationship()
    question: Mapped[Question | None] = relationship()
    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])

    @property
    def reported(self) -> ChatMessage | Question:
        """What was reported: the message or the question (exactly one is set)."""
        target = self.message if self.message is not None else self.question
        assert target is not None, "a report names a message or a question"
        return target


class LiveSanction(db.Model):  # type: ignore[name-defined,misc]
    """A mute or ban of one person in one event, until a time or (without `until`) until lifted."""

    __tablename__ = "live_sanctions"
    __table_args__ = (UniqueConstraint("event_id", "user_id", "kind", name="uq_live_sanctions_event_user_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    def is_active(self, now: datetime) -> bool:
        return self.until is None or self.until > now


class LiveRoomSetting(db.Model):  # type: ignore[name-defined,misc]
    """Per-room moderation settings (slow mode)."""

    __tablename__ = "live_room_settings"
    __table_args__ = (UniqueConstraint("event_id", "room", name="uq_live_room_settings_event_room"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    room: Mapped[str] = mapped_column(String(80))
    slow_mode_seconds: Mapped[int] = mapped_column(default=0)


class Question(db.Model):  # type: ignore[name-defined,misc]
    """A question to a session's speakers; sorted by votes, answered by moderators.

    A hidden question (`hidden_at` set by a moderator) is gone from every public view; moderators still see it,
    marked, and can restore it with its votes.
    """

    __tablename__ = "qa_questions"
    __table_args__ = (
        UniqueConstraint("author_id", "session_id", "client_id", name="uq_qa_questions_author_session_client"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    author_name: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_LIMIT))
    vote_count: Mapped[int] = mapped_column(default=0)
    is_answered: Mapped[bool] = mapped_column(default=False)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    session: Mapped[ConferenceSession] = relationship()
    hidden_by: Mapped[User | None] = relationship(foreign_keys=[hidden_by_id])

    @property
    def room(self) -> str:
        return f"session:{self.session_id}"

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None


class QuestionVote(db.Model):  # type: ignore[name-defined,misc]
    """One person's upvote of one question (one per person)."""

    __tablename__ = "qa_votes"
    __table_args__ = (UniqueConstraint("question_id", "user_id", name="uq_qa_votes_question_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("qa_questions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Announcement(db.Model):  # type: ignore[name-defined,misc]
    """A banner message from the organisers to everyone in the event."""

    __tablename__ = "live_announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(500))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
