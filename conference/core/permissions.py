"""The one place that maps roles to permissions.

Views, API endpoints and socket handlers all ask `has_permission(user, event, permission)`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conference.auth.models import User
    from conference.events.models import Event


class Role(StrEnum):
    ORGANISER = "organiser"
    MODERATOR = "moderator"
    SPEAKER = "speaker"
    ATTENDEE = "attendee"


class Permission(StrEnum):
    VIEW_EVENT = "view_event"  # see an unpublished event
    JOIN_LIVE = "join_live"  # join chat rooms, read history
    CHAT = "chat"  # send chat messages, ask and vote questions, react
    UPLOAD_OWN_SLIDES = "upload_own_slides"
    EDIT_OWN_PROFILE = "edit_own_profile"
    MODERATE = "moderate"  # delete messages, mute, ban, slow mode, answer, hide and restore questions
    SEE_PARTICIPANTS = "see_participants"  # who is online, registration lists
    SEND_ANNOUNCEMENT = "send_announcement"
    MANAGE_AGENDA = "manage_agenda"
    MANAGE_SPEAKERS = "manage_speakers"
    MANAGE_PRESENTATIONS = "manage_presentations"
    MANAGE_EVENT = "manage_event"  # settings, registration code, roles


_ATTENDEE = frozenset({Permission.JOIN_LIVE, Permission.CHAT})
_SPEAKER = _ATTENDEE | {Permission.UPLOAD_OWN_SLIDES, Permission.EDIT_OWN_PROFILE}
_MODERATOR = _ATTENDEE | {Permission.MODERATE, Permission.SEE_PARTICIPANTS, Permission.VIEW_EVENT}
_ORGANISER = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ATTENDEE: _ATTENDEE,
    Role.SPEAKER: frozenset(_SPEAKER),
    Role.MODERATOR: frozenset(_MODERATOR),
    Role.ORGANISER: _ORGANISER,
}

# Higher roles first: a person holds the highest role given to them in an event.
ROLE_RANK = {Role.ORGANISER: 4, Role.MODERATOR: 3, Role.SPEAKER: 2, Role.ATTENDEE: 1}


def permissions_for(role: Role | str | None) -> frozenset[Permission]:
    if role is None:
        return frozenset()
    return ROLE_PERMISSIONS[Role(role)]


def has_permission(user: User | Any, event: Event, permission: Permission) -> bool:
    """True if `user` may do `permission` in `event`. Site administrators may do everything."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "is_admin", False):
        return True
    return permission in permissions_for(user.role_in(event))
