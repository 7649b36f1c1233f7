"""Moderation: removing what was reported, mutes and bans, slow mode, chat retention. Services flush, never commit.

The actor (and the person muted or banned) come as `Standing` snapshots, rooms as `RoomInfo`, as in chat.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import NotAllowed, NotFound, ValidationFailed
from conference.core.permissions import Permission
from conference.events.models import Event
from conference.extensions import db
from conference.live import broadcast
from conference.live.access import Standing, load_standing
from conference.live.chat import delete_message
from conference.live.models import (
    ChatReport,
    LiveRoomSetting,
    LiveSanction,
    SanctionKind,
)
from conference.live.qa import hide_question
from conference.live.rooms import RoomInfo

MAX_SLOW_MODE_SECONDS = 3600
MAX_SANCTION_MINUTES = 60 * 24 * 366


def remove_reported(report: ChatReport, *, actor: Standing) -> None:
    """Resolve a report by removing what it names: delete the message or hide the question (which resolves
    every open report of it)."""
    if report.message is not None:
        delete_message(report.message, actor=actor)
    elif report.question is not None:
        hide_question(report.question, actor=actor)


# --- sanctions and room settings ---------------------------------------------------------------------------

def sanction_user(target: Standing, *, kind: SanctionKind | str, minutes: int | None,
                  actor: Standing) -> LiveSanction:
    """Mute or ban `target` in their standing's event. After commit: their cached standing is dropped, and a
    ban removes their open sockets from the event's rooms."""
    try:
        kind = SanctionKind(kind)
    except ValueError:
        raise ValidationFailed(_("Unknown sanction."), field="kind") from None
    if minutes is not None and not 1 <= minutes <= MAX_SANCTION_MINUTES:
        raise ValidationFailed(_("The duration is out of range."), field="minutes")
    if target.user_id == actor.user_id:
        raise NotAllowed(_("You cannot do this to yourself."), code="self")
    if target.is_admin or target.may(Permission.MODERATE):
        raise NotAllowed(_("Moderators and organisers cannot be muted or banned."), code="protected")
    if target.role is None:
        raise NotFound(_("This person is not registered for the event."), field="user")
    event_id, user_id = target.event_id, target.user_id
    until = utcnow() + timedelta(minutes=minutes) if minutes else None
    sanction = db.session.scalar(select(LiveSanction).where(
        LiveSanction.event_id == event_id, LiveSanction.user_id == user_id, LiveSanction.kind == kind))
    if sanction is None:
        sanction = LiveSanction(event_id=event_id, user_id=user_id, kind=kind, until=until,
                                created_by_id=actor.user_id)
        db.session.add(sanction)
    else:
        sanction.until, sanction.created_by_id, sanction.created_at = until, actor.user_id, utcnow()
    db.session.flush()
    after_commit.defer(broadcast.forget_person, user_id)
    if kind == SanctionKind.BAN:
        after_commit.defer(broadcast.remove_user_from_event, event_id, user_id, "banned")
    return sanction


def lift_sanction(sanction: LiveSanction, *, actor: Standing) -> None:
    """End a mute or ban now. After commit: the person's cached standing is dropped."""
    user_id = sanction.user_id
    db.session.delete(sanction)
    db.session.flush()
    after_commit.defer(broadcast.forget_person, user_id)


def active_sanctions(event: Event) -> list[LiveSanction]:
    now = utcnow()
    rows = db.session.scalars(select(LiveSanction).where(LiveSanction.event_id == event.id)
                              .order_by(LiveSanction.created_at.desc()))
    return [s for s in rows if s.is_active(now)]


def set_slow_mode(room: RoomInfo, *, seconds: int, actor: Standing) -> None:
    """Set the room's minimum interval between one person's messages. After commit: the cached room is
    dropped and `chat:settings` goes to the room."""
    if not room.has_chat:
        raise ValidationFailed(_("This room has no chat."), code="no_chat", field="room")
    if not 0 <= seconds <= MAX_SLOW_MODE_SECONDS:
        raise ValidationFailed(_("Slow mode must be between 0 and %(n)d seconds.", n=MAX_SLOW_MODE_SECONDS),
                               field="seconds")
    setting = db.session.scalar(select(LiveRoomSetting).where(LiveRoomSetting.event_id == room.event_id,
                                                              LiveRoomSetting.room == room.name))
    if setting is None:
        setting = LiveRoomSetting(event_id=room.event_id, room=room.name)
        db.session.add(setting)
    setting.slow_mode_seconds = seconds
    db.session.flush()
    after_commit.defer(broadcast.forget_room, room.name)
    after_commit.defer(broadcast.emit_to_room, room.name, "chat:settings",
                       {"room": room.name, "slow_mode_seconds": seconds})


def set_chat_retention(event: Event, *, days: int | None, actor: User) -> None:
    """How many days after the event its chat (messages and their reports) is deleted; None keeps it. The other
    periods of the event's retention policy: `conference.live.retention`."""
    from conference.live.retention import set_retention

    set_retention(event, periods={"chat_retention_days": days}, actor=actor)


def purge_expired_chat(now: datetime | None = None) -> int:
    """Apply every event's retention policy (`conference.live.retention.purge_expired`); returns the number of
    chat messages deleted."""
    from conference.live.retention import purge_expired

    return purge_expired(now).deleted["chat"]


def member_standing(event_id: int, user_id: int) -> Standing:
    """A registered person's standing in the event, fresh from the database (the one to be muted or banned)."""
    standing = load_standing(user_id, event_id)
    if standing is None or standing.role is None:
        raise NotFound(_("This person is not registered for the event."), field="user_id")
    return standing
