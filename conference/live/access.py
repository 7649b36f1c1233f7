"""Who may do what in a live room: the cached `Standing` snapshot (role, mute, ban) and the checks on it.

Chat, Q&A, reactions and moderation decide "may this person do X here" only through these functions.
"""

from __future__ import annotations

from collections.abc import Collection
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
from conference.core.permissions import Permission, Role, permissions_for
from conference.events.models import EventMembership
from conference.extensions import db
from conference.live.broadcast import LiveState, live_state
from conference.live.models import (
    LiveSanction,
    SanctionKind,
)

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

    def may(self, permission: Permission) -> bool:
        """The same answer as `has_permission(user, event, permission)`, from the snapshot."""
        if self.is_disabled:
            return False
        return self.is_admin or permission in permissions_for(self.role)

    @property
    def shown_role(self) -> str:
        return shown_role(self.role, is_admin=self.is_admin)

    def is_muted(self, now: datetime) -> bool:
        return self.mute_ends is not None and self.mute_ends > now

    def is_banned(self, now: datetime) -> bool:
        return self.ban_ends is not None and self.ban_ends > now


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


def cached_standing(user_id: int, event_id: int, state: LiveState | None = None) -> Standing | None:
    """The snapshot as the live layer uses it: cached per process for a few seconds (`LiveState.standings`),
    loaded on a miss, dropped at once by `broadcast.forget_person`; None if the account is gone."""
    state = state or live_state()
    return state.standings.get((user_id, event_id),  # type: ignore[no-any-return]
                               lambda: load_standing(user_id, event_id))


def shown_role(role: Role | None, *, is_admin: bool) -> str:
    """The role other people see next to a name (chat messages, the participants list)."""
    if role is not None:
        return str(role)
    return "admin" if is_admin else Role.ATTENDEE.value


def shown_roles(event_id: int, user_ids: Collection[int]) -> list[tuple[int, str, str]]:
    """(id, name, shown role) of these people in the event, by name (the participants list)."""
    if not user_ids:
        return []
    rows = db.session.execute(
        select(User.id, User.name, User.is_admin, EventMembership.role)
        .outerjoin(EventMembership, (EventMembership.user_id == User.id) & (EventMembership.event_id == event_id))
        .where(User.id.in_(user_ids)).order_by(User.name))
    return [(user_id, name, shown_role(Role(role) if role else None, is_admin=bool(is_admin)))
            for user_id, name, is_admin, role in rows]


def require(standing: Standing, permission: Permission) -> None:
    """Moderation and announcements: the event permission only (mutes and bans do not apply)."""
    if not standing.may(permission):
        raise NotAllowed(_("You do not have permission to do this."))


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
