"""Live state behind small interfaces: who is connected, presence, connection caps (aggregation and
grouped sends: `fanout`).

The sid -> identity map is per process. Presence counts and connection caps are shared between worker
processes through Redis when `MESSAGE_QUEUE` is set (`SharedCounts`), and fall back to this process's own
numbers while Redis is unreachable; each worker re-publishes its share when Redis is back, and a worker that
died without cleaning up (kill -9) has its share removed by the survivors.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from conference.settings import Settings

log = logging.getLogger("conference.live.state")


@dataclass
class SocketIdentity:
    """Who is behind one Socket.IO connection; decided once at connect time by the server."""

    user_id: int
    login_token: str | None = None  # browser connections: the login session's token
    token_id: int | None = None  # API-token connections: the token's row id
    rooms: set[str] = field(default_factory=set)
    event_ids: dict[str, int] = field(default_factory=dict)  # room -> event id


class ConnectionRegistry:
    """The per-process map sid -> identity, with reverse lookups for logout, token revocation and bans.

    With `shared` (several workers), room presence is also counted in Redis, so `online_count` and
    `online_users` answer for the whole deployment; without Redis they answer for this process.
    """

    def __init__(self, shared: SharedCounts | None = None) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, SocketIdentity] = {}
        self._by_user: dict[int, set[str]] = defaultdict(set)
        self._room_members: dict[str, Counter[int]] = defaultdict(Counter)  # room -> user id -> sockets
        self.shared = shared
        if shared is not None:
            shared.add_source(self._presence_share)

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
        self._share([(room, identity.user_id, -1) for room in identity.rooms])
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
        self._share([(room, identity.user_id, 1)])
        return True

    def exit(self, sid: str, room: str) -> bool:
        with self._lock:
            identity = self._by_sid.get(sid)
            if identity is None or room not in identity.rooms:
                return False
            identity.rooms.discard(room)
            identity.event_ids.pop(room, None)
            self._drop_member(room, identity.user_id)
        self._share([(room, identity.user_id, -1)])
        return True

    def _share(self, changes: list[tuple[str, int, int]]) -> None:
        """Count sockets per (room, user) in Redis too; increments commute, so they go out after the lock."""
        if self.shared is not None and changes:
            self.shared.add_many([(presence_key(room), str(user), delta) for room, user, delta in changes])

    def _presence_share(self) -> Iterable[tuple[str, str, int]]:
        with self._lock:
            return [(presence_key(room), str(user), count) for room, members in self._room_members.items()
                    for user, count in members.items()]

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
        """Distinct people in `room`: on every worker when shared (and Redis answers), else in this process."""
        if self.shared is not None:
            fields = self.shared.fields(presence_key(room))
            if fields is not None:
                return [int(user) for user in fields]
        with self._lock:
            return list(self._room_members.get(room, ()))

    def online_count(self, room: str) -> int:
        if self.shared is not None:
            count = self.shared.size(presence_key(room))
            if count is not None:
                return count
        return len(self._room_members.get(room, ()))

    def rooms(self) -> list[str]:
        """Rooms with at least one socket in this process."""
        with self._lock:
            return list(self._room_members)

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

    def snapshot(self) -> dict[int, int]:
        with self._lock:
            return dict(self._counts)


class SharedConnectionCounter:
    """Connections per user over all workers (Redis); while Redis is unreachable, the cap applies per process."""

    def __init__(self, shared: SharedCounts) -> None:
        self.shared = shared
        self.local = MemoryConnectionCounter()  # this worker's own truth, re-published after an outage
        shared.add_source(self._share)

    def acquire(self, user_id: int, limit: int) -> bool:
        if not self.local.acquire(user_id, limit):
            return False
        total = self.shared.add(CONNECTIONS_KEY, str(user_id), 1, limit=limit)
        if total == -1:  # the cap is reached on the other workers
            self.local.release(user_id)
            return False
        return True

    def release(self, user_id: int) -> None:
        self.local.release(user_id)
        self.shared.add(CONNECTIONS_KEY, str(user_id), -1)

    def _share(self) -> Iterable[tuple[str, str, int]]:
        return [(CONNECTIONS_KEY, str(user), count) for user, count in self.local.snapshot().items()]


# --- counts shared by the worker processes (Redis) -------------------------------------------------------

KEY_PREFIX = "conference:live:"
WORKERS_KEY = f"{KEY_PREFIX}workers"  # sorted set: worker id -> last heartbeat (Redis server time)
CONNECTIONS_KEY = f"{KEY_PREFIX}connections"  # hash: user id -> open sockets on all workers


def presence_key(room: str) -> str:
    return f"{KEY_PREFIX}presence:{room}"  # hash: user id -> sockets in the room on all workers


# Every worker's share is also kept in its own hash (field "<key>\x1f<field>"), so that it can be taken back
# when the worker dies (kill -9) or replaced when Redis lost it (restart) or missed some changes (outage).
_LUA_FORGET = """
local function forget(wkey)
  local items = redis.call('HGETALL', wkey)
  for i = 1, #items, 2 do
    local sep = string.find(items[i], '\\31', 1, true)
    local key, field = string.sub(items[i], 1, sep - 1), string.sub(items[i], sep + 1)
    if redis.call('HINCRBY', key, field, -tonumber(items[i + 1])) == 0 then redis.call('HDEL', key, field) end
  end
  redis.call('DEL', wkey)
end
"""
# KEYS: total hash, worker hash. ARGV: field, delta, worker field, limit (0: none). -1 if over the limit.
_LUA_ADD = """
local limit = tonumber(ARGV[4])
if limit > 0 and tonumber(ARGV[2]) > 0 and tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') >= limit then
  return -1
end
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if total == 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[2]) == 0 then redis.call('HDEL', KEYS[2], ARGV[3]) end
return total
"""
# KEYS: workers set, worker hash. ARGV: worker id, then key, field, count triples: replace this worker's share.
_LUA_RESYNC = _LUA_FORGET + """
forget(KEYS[2])
for i = 2, #ARGV, 3 do
  local key, field, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('HINCRBY', key, field, count) == 0 then redis.call('HDEL', key, field) end
  redis.call('HINCRBY', KEYS[2], key .. '\\31' .. field, count)
end
redis.call('ZADD', KEYS[1], redis.call('TIME')[1], ARGV[1])
return 1
"""
# KEYS: workers set. ARGV: worker id, seconds without heartbeat after which a worker counts as dead, prefix.
# Returns -1 when this worker was itself declared dead (it must re-publish its share), else the dead removed.
_LUA_HEARTBEAT = _LUA_FORGET + """
local now = tonumber(redis.call('TIME')[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  forget(ARGV[3] .. 'worker:' .. id)
end
return #dead
"""


class SharedCounts:
    """Counters in Redis hashes that several worker processes add to, each keeping track of its own share.

    Every call fails soft: on a Redis error it returns None, and the worker re-publishes its whole share
    (from the `sources`, its in-process truth) at the next heartbeat that reaches Redis.
    """

    def __init__(self, client: Any, *, ttl: float = 15.0) -> None:
        self.client = client
        self.ttl = ttl
        self.worker_id = uuid.uuid4().hex
        self.worker_key = f"{KEY_PREFIX}worker:{self.worker_id}"
        self._sources: list[Callable[[], Iterable[tuple[str, str, int]]]] = []
        self._add = client.register_script(_LUA_ADD)
        self._resync = client.register_script(_LUA_RESYNC)
        self._heartbeat = client.register_script(_LUA_HEARTBEAT)
        self.stale = True  # Redis does not (yet) hold this worker's share
        self.available = False
        self._running = False

    def add_source(self, source: Callable[[], Iterable[tuple[str, str, int]]]) -> None:
        self._sources.append(source)

    def _failed(self, error: Exception) -> None:
        if self.available or not self.stale:
            log.warning("Redis unreachable for shared live counts: %s", error)
        self.available = False
        self.stale = True

    def add(self, key: str, field: str, delta: int, *, limit: int = 0) -> int | None:
        if self.stale:
            return None  # our share is re-published in full at the next heartbeat
        try:
            return int(self._add(keys=[key, self.worker_key], args=[field, delta, f"{key}\x1f{field}", limit]))
        except Exception as error:  # noqa: BLE001 - Redis down: count locally, resync later
            self._failed(error)
            return None

    def add_many(self, changes: list[tuple[str, str, int]]) -> None:
        if self.stale:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, field, delta in changes:
                self._add(keys=[key, self.worker_key], args=[field, delta, f"{key}\x1f{field}", 0], client=pipe)
            pipe.execute()
        except Exception as error:  # noqa: BLE001
            self._failed(error)

    def size(self, key: str) -> int | None:
        if self.stale:
            return None
        try:
            return int(self.client.hlen(key))
        except Exception as error:  # noqa: BLE001
            self._failed(error)
            return None

    def fields(self, key: str) -> list[str] | None:
        if self.stale:
            return None
        try:
            return [f.decode() for f, v in self.client.hgetall(key).items() if int(v) > 0]
        except Exception as error:  # noqa: BLE001
            self._failed(error)
            return None

    def heartbeat(self) -> None:
        """Say this worker is alive, take back the share of dead workers, re-publish ours when stale."""
        try:
            if not self.stale and int(self._heartbeat(keys=[WORKERS_KEY],
                                                      args=[self.worker_id, self.ttl, KEY_PREFIX])) >= 0:
                return
            # Flag first: changes made while we collect are then re-sent by the next heartbeat, not lost.
            self.stale = False
            share: Counter[tuple[str, str]] = Counter()
            for source in self._sources:
                for key, field, count in source():
                    share[(key, field)] += count
            args: list[Any] = [self.worker_id]
            for (key, field), count in share.items():
                if count:
                    args += [key, field, count]
            self._resync(keys=[WORKERS_KEY, self.worker_key], args=args)
            if not self.available:
                log.info("shared live counts published to Redis (%d entries)", len(share))
            self.available = True
        except Exception as error:  # noqa: BLE001
            self._failed(error)

    def forget(self) -> None:
        """Take this worker's share back (clean shutdown)."""
        try:
            self.client.register_script(_LUA_FORGET + "forget(KEYS[1]) redis.call('ZREM', KEYS[2], ARGV[1])")(
                keys=[self.worker_key, WORKERS_KEY], args=[self.worker_id])
        except Exception as error:  # noqa: BLE001
            log.warning("could not remove this worker's live counts: %s", error)

    def run(self, sleep: Callable[[float], Any]) -> None:
        """The heartbeat loop (a background task); a failed Redis call is retried at the next beat."""
        if self._running:
            return
        self._running = True
        interval = max(0.2, min(self.ttl / 3, 5.0))
        while True:
            self.heartbeat()
            sleep(interval if self.available else min(interval, 0.5))


def shared_state(settings: Settings, *, start_task: Callable[..., Any],
                 sleep: Callable[[float], Any]) -> tuple[ConnectionRegistry, ConnectionCounter]:
    """The registry and connection counter for this process: Redis-backed when `MESSAGE_QUEUE` is Redis."""
    url = settings.message_queue
    if not url or not str(url).startswith(("redis://", "rediss://", "unix://")):
        return ConnectionRegistry(), MemoryConnectionCounter()
    from conference.config import redis_client

    shared = SharedCounts(redis_client(url), ttl=settings.live_worker_ttl)
    registry, counter = ConnectionRegistry(shared), SharedConnectionCounter(shared)
    # No Redis call here: building the live state must not yield to another greenlet (which would build a
    # second one). The first heartbeat publishes this worker's share; until then counts are per process.
    start_task(shared.run, sleep)
    return registry, counter
