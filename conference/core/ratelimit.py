"""Fixed-window rate limits, in memory for one process or in Redis when several processes share them."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

log = logging.getLogger("conference.ratelimit")


class RateLimitStore(Protocol):
    def hit(self, key: str, window: int) -> int:
        """Count one hit for `key` in the current window; return the count so far."""

    def reset(self, key: str) -> None: ...


class MemoryRateLimitStore:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, window: int) -> int:
        bucket = int(time.time()) // window
        with self._lock:
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == bucket}
            old_bucket, count = self._counts.get(key, (bucket, 0))
            count = count + 1 if old_bucket == bucket else 1
            self._counts[key] = (bucket, count)
            return count

    def reset(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


class RedisRateLimitStore:
    """Counts shared by all workers. While Redis is unreachable the limits still hold, per process."""

    def __init__(self, client: Any, prefix: str = "conference:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._fallback = MemoryRateLimitStore()

    def hit(self, key: str, window: int) -> int:
        bucket = int(time.time()) // window
        redis_key = f"{self._prefix}{key}:{bucket}"
        try:
            pipe = self._client.pipeline()
            pipe.incr(redis_key)
            pipe.expire(redis_key, window + 1)
            count, _ = pipe.execute()
        except Exception as error:  # noqa: BLE001 - a stopped Redis must not stop chat or logins
            log.warning("rate limits without Redis (per process) for now: %s", error)
            return self._fallback.hit(key, window)
        return int(count)

    def reset(self, key: str) -> None:
        self._fallback.reset(key)
        try:
            for redis_key in self._client.scan_iter(f"{self._prefix}{key}:*"):
                self._client.delete(redis_key)
        except Exception as error:  # noqa: BLE001
            log.warning("could not reset a rate limit in Redis: %s", error)


def make_store(message_queue: str | None) -> RateLimitStore:
    if message_queue and message_queue.startswith("redis"):
        import redis

        from conference.config import redis_options

        return RedisRateLimitStore(redis.Redis.from_url(message_queue, **redis_options()))
    return MemoryRateLimitStore()


def is_over_limit(store: RateLimitStore, key: str, limit: int, window: int) -> bool:
    return store.hit(key, window) > limit
