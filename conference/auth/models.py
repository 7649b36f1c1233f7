"""User accounts, server-side login sessions and API tokens."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.core.db import UTCDateTime, utcnow
from conference.core.permissions import Role
from conference.extensions import db

if TYPE_CHECKING:
    from conference.events.models import Event, EventMembership


def hash_secret(secret: str) -> str:
    """Tokens are long random strings, so a plain SHA-256 is the right storage hash (no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_disabled: Mapped[bool] = mapped_column(default=False)
    locale: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set once the owner proved the address (a mailed link) or an operator vouched for it. Roles, invitations
    # and imports attach to the address only then (see `conference.events.services.set_role`).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The newest password-reset link carries this time: asking again makes every older link void.
    password_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A deleted account keeps its row (messages and questions point at it) without name, address or password.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    memberships: Mapped[list[EventMembership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    api_tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")
    login_sessions: Mapped[list[LoginSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # Flask-Login protocol. `get_id` is set per request by the login session that authenticated.
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return not self.is_disabled

    @property
    def is_active(self) -> bool:
        return not self.is_disabled

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def display_name(self) -> str:
        """The name others see; a deleted account shows as such in the viewer's language."""
        if self.deleted_at is not None:
            from flask_babel import gettext

            return gettext("deleted account")
        return self.name

    def get_id(self) -> str:
        return getattr(self, "_login_token", "") or ""

    def role_in(self, event: Event) -> Role | None:
        """This user's role in `event` (cached on the instance for the request)."""
        cache: dict[int, Role | None] = self.__dict__.setdefault("_role_cache", {})
        if event.id not in cache:
            from conference.events.models import EventMembership

            role = db.session.scalar(
                select(EventMembership.role).where(
                    EventMembership.event_id == event.id, EventMembership.user_id == self.id
                )
            )
            cache[event.id] = Role(role) if role else None
        return cache[event.id]

    def forget_roles(self) -> None:
        self.__dict__.pop("_role_cache", None)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class LoginSession(db.Model):  # type: ignore[name-defined,misc]
    """One browser login. The cookie holds a random token; logout ends the row, so a replayed cookie fails."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship(back_populates="login_sessions")

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class ApiToken(db.Model):  # type: ignore[name-defined,misc]
    """A bearer token for the JSON API and Socket.IO clients; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in lists so owners recognise their tokens
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="api_tokens")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
