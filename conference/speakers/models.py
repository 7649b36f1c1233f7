"""Speaker profiles: one per person and event, optionally claimed by a user account."""

from __future__ import annotations

from datetime import datetime
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
