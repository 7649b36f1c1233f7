"""Outgoing live traffic: room broadcasts, grouped chat frames, presence and reaction aggregation, removals.

Called after commit (via `after_commit.defer`) or from signal receivers; never from inside a transaction.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from flask import Flask, current_app

from conference.extensions import socketio
from conference.live.state import (
    ConnectionCounter,
    ConnectionRegistry,
    MemoryConnectionCounter,
    PeriodicAggregator,
    RoomBroadcaster,
)


def _limit(value: Any, default: tuple[int, int]) -> tuple[int, int]:
    """`(count, seconds)` from a tuple or from a `"count/seconds"` string (environment variables)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return int(value[0]), int(value[1])
    if isinstance(value, str) and "/" in value:
        count, seconds = value.split("/", 1)
        return int(count), int(seconds)
    return default


class LiveState:
    """Everything the live layer keeps per process for one application."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.app = app
        self.registry = ConnectionRegistry()
        self.connections: ConnectionCounter = MemoryConnectionCounter()
        self.max_connections_per_user = int(config.get("LIVE_MAX_CONNECTIONS_PER_USER", 8))
        self.chat_rate = _limit(config.get("LIVE_CHAT_RATE_LIMIT"), (20, 10))
        self.action_rate = _limit(config.get("LIVE_ACTION_RATE_LIMIT"), (60, 10))
        self.join_rate = _limit(config.get("LIVE_JOIN_RATE_LIMIT"), (60, 10))
        interval = float(config.get("LIVE_AGGREGATE_INTERVAL", 1.0))
        self.presence = PeriodicAggregator(interval=interval, flush=self._flush_presence,
                                           start_task=socketio.start_background_task, sleep=socketio.sleep)
        self.reactions = PeriodicAggregator(interval=interval, flush=self._flush_reactions,
                                            start_task=socketio.start_background_task, sleep=socketio.sleep)
        self.broadcaster = RoomBroadcaster(
            emit=socketio.emit, room_size=self.registry.socket_count, start_task=socketio.start_background_task,
            sleep=socketio.sleep, large_room=int(config.get("LIVE_LARGE_ROOM", 100)),
            window=float(config.get("LIVE_GROUP_WINDOW", 0.02)))
        self.room_events: dict[str, int] = {}  # room name -> event id (rooms never move between events)
        self._lock = threading.Lock()

    def _flush_presence(self, room: str, counts: Counter[str]) -> None:
        socketio.emit("presence", {"room": room, "online": self.registry.online_count(room)}, to=room)

    def _flush_reactions(self, room: str, counts: Counter[str]) -> None:
        if counts:
            socketio.emit("reactions", {"room": room, "counts": dict(counts)}, to=room)


def live_state(app: Flask | None = None) -> LiveState:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get("conference_live")
    if state is None:
        state = app.extensions.setdefault("conference_live", LiveState(app))
    return state  # type: ignore[no-any-return]


def chat_message(room: str, payload: dict[str, Any]) -> None:
    live_state().broadcaster.publish(room, payload)


def emit_to_room(room: str, event: str, payload: dict[str, Any]) -> None:
    socketio.emit(event, payload, to=room)


def enter_room(sid: str, room: str, event_id: int) -> None:
    state = live_state()
    if state.registry.enter(sid, room, event_id):
        socketio.server.enter_room(sid, room, namespace="/")
        if not room.startswith("event:"):
            state.presence.touch(room)


def leave_room(sid: str, room: str, *, notify: str | None = None) -> None:
    state = live_state()
    if state.registry.exit(sid, room):
        socketio.server.leave_room(sid, room, namespace="/")
        if not room.startswith("event:"):
            state.presence.touch(room)
        if notify:
            socketio.emit("room:removed", {"room": room, "reason": notify}, to=sid)


def remove_user_from_event(event_id: int, user_id: int, reason: str) -> None:
    """Take every open socket of `user_id` out of the rooms of `event_id` (ban, lost registration)."""
    registry = live_state().registry
    for sid in registry.sids_of_user(user_id):
        identity = registry.get(sid)
        if identity is None:
            continue
        for room, room_event in list(identity.event_ids.items()):
            if room_event == event_id:
                leave_room(sid, room, notify=reason)


def disconnect(sids: list[str]) -> None:
    for sid in sids:
        socketio.server.disconnect(sid, namespace="/")
