"""Socket.IO handlers for moderation (mute, ban, slow mode) and announcements: transport only."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from conference.core.errors import ValidationFailed
from conference.core.permissions import Permission
from conference.live import announcements, inputs, moderation, payloads
from conference.live.socket_calls import SocketCall, socket_event, text_field


def _sanction(call: SocketCall, kind: str) -> dict[str, Any]:
    target = moderation.member_standing(call.room_info.event_id, call.id("user_id"))
    minutes = call.data.get("minutes")
    if minutes is not None:
        minutes = inputs.clean_number(minutes, field="minutes")
    moderation.sanction_user(target, kind=kind, minutes=minutes, actor=call.standing)
    return {"user_id": target.user_id, "kind": kind}


@socket_event(room=True, permission=Permission.MODERATE)
def on_mod_mute(call: SocketCall) -> dict[str, Any]:
    return _sanction(call, "mute")


@socket_event(room=True, permission=Permission.MODERATE)
def on_mod_ban(call: SocketCall) -> dict[str, Any]:
    return _sanction(call, "ban")


@socket_event(room=True, permission=Permission.MODERATE)
def on_mod_slow_mode(call: SocketCall) -> dict[str, Any]:
    seconds = inputs.clean_number(call.data.get("seconds"), field="seconds")
    moderation.set_slow_mode(call.room_info, seconds=seconds, actor=call.standing)
    return {"room": call.room_info.name, "slow_mode_seconds": seconds}


# --- announcements -------------------------------------------------------------------------------------

@socket_event()
def on_announce(call: SocketCall) -> dict[str, Any]:
    slug = call.data.get("event")
    if not isinstance(slug, str):
        raise ValidationFailed(_("The field 'event' is required."), field="event")
    room = call.room_of(f"event:{slug}")
    call.require(Permission.SEND_ANNOUNCEMENT)
    text = text_field(call.data, "text", announcements.ANNOUNCEMENT_LIMIT)
    announcement = announcements.announce(room, text=text, actor=call.standing)
    return {"announcement": payloads.announcement_payload(announcement, room.event_slug)}
