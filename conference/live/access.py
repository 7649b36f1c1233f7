"""Who may do what in a live room: the cached `Standing` snapshot (role, mute, ban) and the join/write checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.orm import aliased

from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.errors import NotAllowed
from conference.core.permissions import Permission, Role, has_permission, permissions_for
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.live.models import (
    LiveSanction,
    SanctionKind,
)
from conference.live.rooms import LiveRoom

_FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Standing:
    """One person's standing in one event (name, role, mute, ban) as a read-only snapshot.

    The send path checks permissions against it instead of querying; it is cached per process for a few
    seconds and dropped at once on a role change, mute, ban or lift (see `broadcast.forget_person`).
    """

    user_id: int
    event_id: int
    name: str
    is_admin: bool
    is_disabled: bool
    role: Role | None
    mute_ends: datetime | None = None  # None: not muted
    ban_ends: datetime | None = None

    @property
    def is_authenticated(self) -> bool:
        return not self.is_disabled

    def role_in(self, event: Event) -> Role | None:
        """`has_permission` protocol; a standing only knows its own event."""
        if event.id != self.event_id:
            raise ValueError("a standing belongs to one event")
        return self.role

    def may(self, permission: Permission) -> bool:
        """The same answer as `has_permission(user, event, permission)`, from the snapshot."""
        if self.is_disabled:
            return False
        return self.is_admin or permission in permissions_for(self.role)

    @property
    def shown_role(self) -> str:
        if self.role is not None:
            return str(self.role)
        return "admin" if self.is_admin else Role.ATTENDEE.value

    def is_muted(self, now: datetime) -> bool:
        return self.mute_ends is not None and self.mute_ends > now

    def is_banned(self, now: datetime) -> bool:
        return self.ban_ends is not None and self.ban_ends > now


def _sanction_ends(event_id: int, user_id: int) -> dict[str, datetime]:
    rows = db.session.execute(select(LiveSanction.kind, LiveSanction.until).where(
        LiveSanction.event_id == event_id, LiveSanction.user_id == user_id))
    return {kind: until or _FOREVER for kind, until in rows}


@lru_cache(maxsize=1)
def _standing_query() -> Any:
    """Built once: constructing a select with aliases costs more than running it."""
    mute, ban = aliased(LiveSanction), aliased(LiveSanction)
    user_id: Any = bindparam("user_id")
    event_id: Any = bindparam("event_id")

    def sanction(alias: Any, kind: SanctionKind) -> Any:
        return (alias.event_id == event_id) & (alias.user_id == User.id) & (alias.kind == kind.value)

    return (select(User.name, User.is_admin, User.is_disabled, EventMembership.role, mute.id, mute.until,
                   ban.id, ban.until)
            .outerjoin(EventMembership, (EventMembership.user_id == User.id) & (EventMembership.event_id == event_id))
            .outerjoin(mute, sanction(mute, SanctionKind.MUTE))
            .outerjoin(ban, sanction(ban, SanctionKind.BAN))
            .where(User.id == user_id))


def load_standing(user_id: int, event_id: int) -> Standing | None:
    """A fresh snapshot from the database in one query; None if the account is gone."""
    row = db.session.execute(_standing_query(), {"user_id": user_id, "event_id": event_id}).first()
    if row is None:
        return None
    name, is_admin, is_disabled, role, mute_id, mute_until, ban_id, ban_until = row
    return Standing(user_id, event_id, name, bool(is_admin), bool(is_disabled), Role(role) if role else None,
                    (mute_until or _FOREVER) if mute_id else None, (ban_until or _FOREVER) if ban_id else None)


def standing_of(user: User, event: Event) -> Standing:
    """The snapshot for an already loaded user (HTTP views, rare socket actions)."""
    ends = _sanction_ends(event.id, user.id)
    return Standing(user.id, event.id, user.name, user.is_admin, user.is_disabled, user.role_in(event),
                    ends.get(SanctionKind.MUTE), ends.get(SanctionKind.BAN))


def require_join(standing: Standing, now: datetime | None = None) -> None:
    """Registered people (any role) and site administrators may join; banned people may not."""
    if not standing.may(Permission.JOIN_LIVE):
        raise NotAllowed(_("Register for this event to take part."), code="not_registered")
    if not standing.is_admin and standing.is_banned(now or utcnow()):
        raise NotAllowed(_("You have been removed from this event's live rooms."), code="banned")


def require_write(standing: Standing, now: datetime | None = None) -> None:
    """Chat, questions, votes, reactions: needs the chat permission and no mute."""
    now = now or utcnow()
    require_join(standing, now)
    if not standing.may(Permission.CHAT):
        raise NotAllowed(_("You may not write here."), code="forbidden")
    if not standing.may(Permission.MODERATE) and standing.is_muted(now):
        raise NotAllowed(_("You have been muted in this event."), code="muted")


# --- the same checks for an already loaded user (HTTP views, rare socket actions) -----------------------

def check_can_join(room: LiveRoom, user: User) -> None:
    """Registered people (any role) and site administrators may join; banned people may not."""
    require_join(standing_of(user, room.event))


def check_can_write(room: LiveRoom, user: User) -> None:
    """Chat, questions, votes, reactions: needs the chat permission and no mute."""
    require_write(standing_of(user, room.event))


def is_moderator(user: User, event: Event) -> bool:
    return has_permission(user, event, Permission.MODERATE)


def shown_role(user: User, event: Event) -> str:
    role = user.role_in(event)
    if role is not None:
        return str(role)
    return "admin" if user.is_admin else Role.ATTENDEE.value
