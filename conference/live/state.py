"""Per-process live state behind small interfaces: who is connected, presence, connection caps, aggregation.

Everything a second worker process would need to see (presence counts, connection caps) sits behind a
class with a narrow interface, so a Redis-backed implementation can replace the in-memory one later.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class SocketIdentity:
    """Who is behind one Socket.IO connection; decided once at connect time by the server."""

    user_id: int
    login_token: str | None = None  # browser connections: the login session's token
    token_id: int | None = None  # API-token connections: the token's row id
    rooms: set[str] = field(default_factory=set)
    event_ids: dict[str, int] = field(default_factory=dict)  # room -> event id


class ConnectionRegistry:
    """The per-process map sid -> identity, with reverse lookups for logout, token revocation and bans."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, SocketIdentity] = {}
        self._by_user: dict[int, set[str]] = defaultdict(set)
        self._room_members: dict[str, Counter[int]] = defaultdict(Counter)  # room -> user id -> sockets

    def add(self, sid: str, identity: SocketIdentity) -> None:
        with self._lock:
            self._by_sid[sid] = identity
            self._by_user[identity.user_id].add(sid)

    def get(self, sid: str) -> SocketIdentity | None:
        return self._by_sid.get(sid)

    def remove(self, sid: str) -> SocketIdentity | None:
        with self._lock:
            identity = self._by_sid.pop(sid, None)
            if identity is None:
                return None
            sids = self._by_user.get(identity.user_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_user[identity.user_id]
            for room in identity.rooms:
                self._drop_member(room, identity.user_id)
            return identity

    def enter(self, sid: str, room: str, event_id: int) -> bool:
        """Record that `sid` joined `room`; False if it was already there."""
        with self._lock:
            identity = self._by_sid.get(sid)
            if identity is None or room in identity.rooms:
                return False
            identity.rooms.add(room)
            identity.event_ids[room] = event_id
            self._room_members[room][identity.user_id] += 1
            return True

    def exit(self, sid: str, room: str) -> bool:
        with self._lock:
            identity = self._by_sid.get(sid)
            if identity is None or room not in identity.rooms:
                return False
            identity.rooms.discard(room)
            identity.event_ids.pop(room, None)
            self._drop_member(room, identity.user_id)
            return True

    def _drop_member(self, room: str, user_id: int) -> None:
        members = self._room_members.get(room)
        if members is None:
            return
        members[user_id] -= 1
        if members[user_id] <= 0:
            del members[user_id]
        if not members:
            del self._room_members[room]

    def sids_of_user(self, user_id: int) -> list[str]:
        with self._lock:
            return list(self._by_user.get(user_id, ()))

    def matching(self, predicate: Callable[[SocketIdentity], bool]) -> list[str]:
        with self._lock:
            return [sid for sid, identity in self._by_sid.items() if predicate(identity)]

    def online_users(self, room: str) -> list[int]:
        with self._lock:
            return list(self._room_members.get(room, ()))

    def online_count(self, room: str) -> int:
        return len(self._room_members.get(room, ()))

    def socket_count(self, room: str) -> int:
        members = self._room_members.get(room)
        return sum(members.values()) if members else 0

    def __len__(self) -> int:
        return len(self._by_sid)


class ConnectionCounter(Protocol):
    """Open connections per user, for the per-user cap (shared across workers in a scale-out)."""

    def acquire(self, user_id: int, limit: int) -> bool: ...

    def release(self, user_id: int) -> None: ...


class MemoryConnectionCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[int] = Counter()

    def acquire(self, user_id: int, limit: int) -> bool:
        with self._lock:
            if self._counts[user_id] >= limit:
                return False
            self._counts[user_id] += 1
            return True

    def release(self, user_id: int) -> None:
        with self._lock:
            self._counts[user_id] -= 1
            if self._counts[user_id] <= 0:
                del self._counts[user_id]


class PeriodicAggregator:
    """Collects per-room updates (presence changes, reactions) and flushes each room at most once per interval.

    No thread runs while nothing is pending: the first update starts one flush task, which ends when idle.
    """

    def __init__(self, *, interval: float, flush: Callable[[str, Any], None],
                 start_task: Callable[..., Any], sleep: Callable[[float], Any]) -> None:
        self.interval = interval
        self._flush = flush
        self._start_task = start_task
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pending: dict[str, Counter[str]] = {}
        self._running = False

    def touch(self, room: str, key: str | None = None) -> None:
        with self._lock:
            bucket = self._pending.setdefault(room, Counter())
            if key is not None:
                bucket[key] += 1
            if self._running:
                return
            self._running = True
        self._start_task(self._run)

    def _run(self) -> None:
        while True:
            self._sleep(self.interval)
            with self._lock:
                pending, self._pending = self._pending, {}
                if not pending:
                    self._running = False
                    return
            for room, counts in pending.items():
                try:
                    self._flush(room, counts)
                except Exception:  # noqa: S112 - one failing room must not stop the others
                    continue


class RoomBroadcaster:
    """Sends chat messages to a room: at once in small or quiet rooms, grouped into one frame per window in
    large busy rooms (one encode and one frame per socket for many messages)."""

    def __init__(self, *, emit: Callable[..., Any], room_size: Callable[[str], int], start_task: Callable[..., Any],
                 sleep: Callable[[float], Any], large_room: int, window: float) -> None:
        self._emit = emit
        self._room_size = room_size
        self._start_task = start_task
        self._sleep = sleep
        self.large_room = large_room
        self.window = window
        self._lock = threading.Lock()
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self._last_sent: dict[str, float] = {}

    def publish(self, room: str, message: dict[str, Any]) -> None:
        if self._room_size(room) < self.large_room:
            self._emit("chat:message", message, to=room)
            return
        now = time.monotonic()
        with self._lock:
            buffer = self._buffers.get(room)
            if buffer is not None:  # a flush is already scheduled: ride along
                buffer.append(message)
                return
            if now - self._last_sent.get(room, 0.0) >= self.window:
                self._last_sent[room] = now
                send_now = True
            else:
                self._buffers[room] = [message]
                send_now = False
        if send_now:
            self._emit("chat:message", message, to=room)
        else:
            self._start_task(self._flush_later, room)

    def _flush_later(self, room: str) -> None:
        self._sleep(self.window)
        with self._lock:
            messages = self._buffers.pop(room, [])
            self._last_sent[room] = time.monotonic()
        if len(messages) == 1:
            self._emit("chat:message", messages[0], to=room)
        elif messages:
            self._emit("chat:messages", {"room": room, "messages": messages}, to=room)
