"""Outgoing live traffic: the per-process `LiveState` (caches, registry, broadcaster), room broadcasts, removals.

Called after commit (via `after_commit.defer`) or from signal receivers; never from inside a transaction.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from conference.core import metrics
from conference.core.cache import ExpiringCache
from conference.extensions import socketio
from conference.live.fanout import PeriodicAggregator, SizedRoomBroadcaster
from conference.live.state import ConnectionCounter, ConnectionRegistry, shared_state
from conference.settings import get_settings


class RecentPayloads(dict[int, dict[str, Any]]):
    """Chat message payloads by id, the oldest dropped first beyond `limit`. A stored message never changes
    (deleting hides it from the history queries), so one payload serves every join and catch-up."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: int, value: dict[str, Any]) -> None:
        super().__setitem__(key, value)
        while len(self) > self.limit:
            try:
                del self[next(iter(self))]
            except (KeyError, RuntimeError, StopIteration):  # a concurrent eviction (threading mode)
                break


class LiveState:
    """Everything the live layer keeps per process for one application."""

    def __init__(self, app: Flask) -> None:
        settings = get_settings(app)
        self.app = app
        self.registry: ConnectionRegistry
        self.connections: ConnectionCounter
        self.registry, self.connections = shared_state(settings, start_task=socketio.start_background_task,
                                                       sleep=socketio.sleep)
        self.max_connections_per_user = settings.live_max_connections_per_user
        self.chat_rate = settings.live_chat_rate_limit
        self.action_rate = settings.live_action_rate_limit
        self.join_rate = settings.live_join_rate_limit
        interval = settings.live_aggregate_interval
        self.presence = PeriodicAggregator(interval=interval, flush=self._flush_presence,
                                           start_task=socketio.start_background_task, sleep=socketio.sleep)
        self.reactions = PeriodicAggregator(interval=interval, flush=self._flush_reactions,
                                            start_task=socketio.start_background_task, sleep=socketio.sleep)
        self.broadcaster = SizedRoomBroadcaster(
            emit=socketio.emit, room_size=self.registry.socket_count, start_task=socketio.start_background_task,
            sleep=socketio.sleep, large_room=settings.live_large_room,
            window=settings.live_group_window, max_window=settings.live_group_window_max,
            settle=settings.live_group_settle,
            on_sent=lambda room, messages, seconds: metrics.chat_sent(self.registry.socket_count(room), messages,
                                                                      seconds))
        self.room_events: dict[str, int] = {}  # room name -> event id (rooms never move between events)
        # What every message checks, without a query per message: room -> RoomInfo, (user, event) -> Standing.
        cache_seconds = settings.live_cache_seconds
        self.rooms: ExpiringCache[str, Any] = ExpiringCache(cache_seconds)
        self.standings: ExpiringCache[tuple[int, int], Any] = ExpiringCache(cache_seconds)
        self.announcements: ExpiringCache[int, dict[str, Any]] = ExpiringCache(cache_seconds)  # event id -> latest
        self.payloads = RecentPayloads(settings.live_payload_cache)
        self._lock = threading.Lock()
        # Told each room's reaction total per flush (the attendance collector counts them per minute).
        self.on_reactions: Callable[[str, int], None] | None = None

    def _flush_presence(self, room: str, counts: Counter[str]) -> None:
        socketio.emit("presence", {"room": room, "online": self.registry.online_count(room)}, to=room)

    def _flush_reactions(self, room: str, counts: Counter[str]) -> None:
        if counts:
            socketio.emit("reactions", {"room": room, "counts": dict(counts)}, to=room)
            if self.on_reactions is not None:
                self.on_reactions(room, sum(counts.values()))


def live_state(app: Flask | None = None) -> LiveState:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get("conference_live")
    if state is None:
        state = app.extensions.setdefault("conference_live", LiveState(app))
    return state  # type: ignore[no-any-return]


def built_live_state(app: Flask | None = None) -> LiveState | None:
    """The live state if this process has built it (a socket connected), else None, for reactions to changes
    made elsewhere: a process without one holds no sockets or cached rooms and standings to update. Building it
    there would start its background tasks and, with Redis, enter the process as a live worker: a CLI command
    (`conference demo` releases an agenda) left a worker entry that never beat again until its TTL."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions.get("conference_live")  # type: ignore[no-any-return]


def forget_person(user_id: int) -> None:
    """Drop the cached standings of `user_id` (role change, mute, ban, lift): the next event reloads them."""
    if (state := built_live_state()) is not None:
        state.standings.forget(lambda key: key[0] == user_id)


def forget_announcements(event_id: int) -> None:
    """Drop the cached latest announcement of the event (a new one was sent from this process)."""
    if (state := built_live_state()) is not None:
        state.announcements.forget(lambda key: key == event_id)


def forget_room(room: str) -> None:
    """Drop the cached settings of `room` (slow mode changed)."""
    if (state := built_live_state()) is not None:
        state.rooms.forget(lambda key: key == room)


def chat_message(room: str, payload: dict[str, Any]) -> None:
    state = live_state()
    state.payloads[payload["id"]] = payload
    state.broadcaster.publish(room, payload)


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
    state = built_live_state()
    if state is None:
        return
    registry = state.registry
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
