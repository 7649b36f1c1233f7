"""The one cache class of the platform: parsed releases, rendered pages and panels, live rooms and standings.

Every cache here answers the same questions the same way: how long an entry lives (`ttl`, read at lookup, so
lowering it takes effect at once; and never past the deadline its loader reports), how many entries it keeps
(the least recently used goes first), and how a change is made visible (`forget`). A load that overlapped a
`forget` is returned to its caller but not kept, so it cannot bring back what was just changed. The lock guards
the dictionary only: loads run outside it. Callers that miss a key while it is being loaded wait for that load
instead of running their own (a reconnect storm is a thousand joins of one room within a second; each used to
load the room itself): if it keeps nothing (it failed, found None, or a `forget` overlapped it) or takes longer
than `wait_for_load` seconds, they load it themselves.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Load(Generic[V]):
    """A load in progress: `done` is set when it ends; `value` if it was kept."""

    __slots__ = ("done", "value", "kept")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.kept = False


class ExpiringCache(Generic[K, V]):
    """Values by key, each kept at most `ttl` seconds (forever: `math.inf`), at most `max_entries` of them."""

    def __init__(self, ttl: float = math.inf, max_entries: int = 100_000, wait_for_load: float = 10.0) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.wait_for_load = wait_for_load
        self._entries: OrderedDict[K, tuple[float, float, V]] = OrderedDict()  # stored at, deadline, value
        self._loading: dict[K, _Load[V]] = {}  # keys being loaded now
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V | None], *,
            keep_for: Callable[[V], float | None] | None = None) -> V | None:
        """The kept value, else `load()` (None is returned and not kept). `keep_for(value)`: seconds the
        value stays true at most (None: no limit beyond `ttl`; 0 or less: not kept)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self.ttl and now < entry[1]:
                self._entries.move_to_end(key)
                return entry[2]
            generation = self._generation
            running = self._loading.get(key)
            if running is None:
                ours: _Load[V] = _Load()
                self._loading[key] = ours
        if running is not None:
            # Someone is loading it: take their value if they keep it (even if their load took longer than
            # `ttl`, as loads do when a storm queues for database connections), else load it ourselves.
            if running.done.wait(self.wait_for_load) and running.kept:
                return running.value
            return self._load(key, load, keep_for, time.monotonic(), self._generation_now())
        try:
            return self._load(key, load, keep_for, now, generation, ours)
        finally:
            with self._lock:
                if self._loading.get(key) is ours:  # a `forget` may have dropped it already
                    del self._loading[key]
            ours.done.set()

    def _generation_now(self) -> int:
        with self._lock:
            return self._generation

    def _load(self, key: K, load: Callable[[], V | None], keep_for: Callable[[V], float | None] | None,
              now: float, generation: int, ours: _Load[V] | None = None) -> V | None:
        value = load()
        if value is not None:
            self._keep(key, value, now, generation, keep_for, ours)
        return value

    def _keep(self, key: K, value: V, now: float, generation: int,
              keep_for: Callable[[V], float | None] | None, ours: _Load[V] | None) -> None:
        """Keep `value` (loaded from `now` on) unless it is true for no time or a `forget` overlapped its load;
        `ours`: the load others wait for, which then hands them the value."""
        limit = keep_for(value) if keep_for is not None else None
        deadline = math.inf if limit is None else now + limit
        if deadline <= now:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (now, deadline, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            if ours is not None:
                ours.value, ours.kept = value, True

    def forget(self, matches: Callable[[K], bool]) -> None:
        """Drop the entries whose key `matches`; loads running now are not kept, and whoever waits for one of
        them loads again (as does anyone who asks from now on)."""
        with self._lock:
            self._generation += 1
            for key in [k for k in self._entries if matches(k)]:
                del self._entries[key]
            for key in [k for k in self._loading if matches(k)]:
                self._loading.pop(key).kept = False

    def values(self) -> list[V]:
        with self._lock:
            return [entry[2] for entry in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)
