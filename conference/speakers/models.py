"""Speaker profiles (one per person and event, optionally claimed by a user account) and invitations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.auth.models import User
from conference.core.db import UTCDateTime, utcnow
from conference.events.models import Event
from conference.extensions import db

if TYPE_CHECKING:
    from conference.agenda.models import SessionSpeaker


class SpeakerProfile(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "speaker_profiles"
    __table_args__ = (UniqueConstraint("event_id", "user_id", name="uq_speaker_profiles_event_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    academic_title: Mapped[str] = mapped_column(String(60), default="")
    position: Mapped[str] = mapped_column(String(120), default="")
    organisation: Mapped[str] = mapped_column(String(160), default="")
    bio: Mapped[str] = mapped_column(Text, default="")  # Markdown, rendered through the sanitiser
    photo_filename: Mapped[str | None] = mapped_column(String(80))  # server-generated name in UPLOAD_DIR
    links: Mapped[str] = mapped_column(Text, default="")  # one http(s) URL per line
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship()
    user: Mapped[User | None] = relationship()
    session_links: Mapped[list[SessionSpeaker]] = relationship(back_populates="speaker")

    @property
    def display_name(self) -> str:
        return f"{self.academic_title} {self.name}".strip()

    def can_edit(self, user: User) -> bool:
        from conference.core.permissions import Permission, has_permission

        if has_permission(user, self.event, Permission.MANAGE_SPEAKERS):
            return True
        return bool(user.is_authenticated and self.user_id == user.id)

    @property
    def link_list(self) -> list[str]:
        """The profile's links; only http(s) URLs are ever stored, this filters again for old rows."""
        return [line.strip() for line in self.links.splitlines()
                if line.strip().lower().startswith(("https://", "http://"))]


class InvitationRole(StrEnum):
    SPEAKER = "speaker"
    MODERATOR = "moderator"


class SpeakerInvitation(db.Model):  # type: ignore[name-defined,misc]
    """An organiser's invitation to speak in one session; the signed link carries id and nonce, used once."""

    __tablename__ = "speaker_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    # The session lives in the agenda (a later domain); only its table is referenced here.
    session_id: Mapped[int] = mapped_column(ForeignKey("conference_sessions.id", ondelete="CASCADE"),
                                            index=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speaker_profiles.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16), default=InvitationRole.SPEAKER)
    nonce: Mapped[str] = mapped_column(String(32))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                       index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship()
    speaker: Mapped[SpeakerProfile] = relationship()
    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])
    accepted_by: Mapped[User | None] = relationship(foreign_keys=[accepted_by_id])

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def is_accepted(self) -> bool:
        return self.accepted_at is not None
