"""The one cache class of the platform: parsed releases, rendered pages and panels, live rooms and standings.

Every cache here answers the same questions the same way: how long an entry lives (`ttl`, read at lookup, so
lowering it takes effect at once; and never past the deadline its loader reports), how many entries it keeps
(the least recently used goes first), and how a change is made visible (`forget`). A load that overlapped a
`forget` is returned to its caller but not kept, so it cannot bring back what was just changed. The lock guards
the dictionary only: loads run outside it, and two callers may load the same key at once (same result).
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


class ExpiringCache(Generic[K, V]):
    """Values by key, each kept at most `ttl` seconds (forever: `math.inf`), at most `max_entries` of them."""

    def __init__(self, ttl: float = math.inf, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, float, V]] = OrderedDict()  # stored at, deadline, value
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
        value = load()
        if value is None:
            return None
        limit = keep_for(value) if keep_for is not None else None
        deadline = math.inf if limit is None else now + limit
        if deadline > now:
            with self._lock:
                if generation == self._generation:
                    self._entries[key] = (now, deadline, value)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
        return value

    def forget(self, matches: Callable[[K], bool]) -> None:
        """Drop the entries whose key `matches`; loads running now are not kept."""
        with self._lock:
            self._generation += 1
            for key in [k for k in self._entries if matches(k)]:
                del self._entries[key]

    def values(self) -> list[V]:
        with self._lock:
            return [entry[2] for entry in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)
