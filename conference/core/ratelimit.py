"""Fixed-window rate limits, in memory for one process or in Redis when several processes share them.

Every limit is a setting `(count, seconds)` in `conference.settings` whose name also names its counters, so two
limits never share a count. Two ways to use them in a request:

- `limit_or_429("REGISTRATION_LIMIT", client_address())` counts every request (account creations, token
  issues, mail requests) and refuses the one over the limit.
- `Attempt` for tries at a secret (password, registration code): it counts a try as a failure *before* the
  secret is checked, so a burst of parallel guesses cannot all pass a check that none of them has failed yet,
  and gives the count back when the secret was right, so only failures count.

A refusal raises `RateLimited` (429). The answer carries `Retry-After` even when the view catches the error to
show it in its form (`init_rate_limits` adds it to every error answer of a refused request).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
from typing import Any, NamedTuple, NoReturn, Protocol

from flask import Flask, Response, current_app, g, request
from flask_babel import gettext as _

from conference.core.errors import RateLimited
from conference.settings import get_settings

log = logging.getLogger("conference.ratelimit")

MAX_MEMORY_KEYS = 100_000
_UNDO_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value and tonumber(value) > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


def window_end(window: int, now: float | None = None) -> int:
    """When the current fixed window of `window` seconds ends (a Unix time)."""
    now = time.time() if now is None else now
    return (int(now) // window + 1) * window


class RateLimitStore(Protocol):
    def hit(self, key: str, window: int) -> int:
        """Count one hit for `key` in the current window; return the count so far."""

    def count(self, key: str, window: int) -> int:
        """The hits of `key` in the current window, without counting one."""

    def undo(self, key: str, window: int) -> None:
        """Take back one hit of the current window (never below zero)."""

    def reset(self, key: str) -> None: ...


class MemoryRateLimitStore:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (end of its window, count)
        self._lock = threading.Lock()

    def hit(self, key: str, window: int) -> int:
        ends = window_end(window)
        with self._lock:
            if len(self._counts) > MAX_MEMORY_KEYS:
                self._prune()
            old_end, count = self._counts.get(key, (ends, 0))
            count = count + 1 if old_end == ends else 1
            self._counts[key] = (ends, count)
            return count

    def count(self, key: str, window: int) -> int:
        ends, count = self._counts.get(key, (0, 0))
        return count if ends == window_end(window) else 0

    def undo(self, key: str, window: int) -> None:
        ends = window_end(window)
        with self._lock:
            old_end, count = self._counts.get(key, (0, 0))
            if old_end == ends and count > 0:
                self._counts[key] = (ends, count - 1)

    def reset(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def _prune(self) -> None:
        """Drop ended windows; if that is not enough (a flood of addresses), the keys seen only once."""
        now = time.time()
        self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        if len(self._counts) > MAX_MEMORY_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > 1}


class RedisRateLimitStore:
    """Counts shared by all workers. While Redis is unreachable the limits still hold, per process."""

    def __init__(self, client: Any, prefix: str = "conference:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._fallback = MemoryRateLimitStore()

    def _key(self, key: str, window: int) -> str:
        return f"{self._prefix}{key}:{window_end(window) // window}"

    def hit(self, key: str, window: int) -> int:
        redis_key = self._key(key, window)
        try:
            pipe = self._client.pipeline()
            pipe.incr(redis_key)
            pipe.expire(redis_key, window + 1)
            count, _ = pipe.execute()
        except Exception as error:  # noqa: BLE001 - a stopped Redis must not stop chat or logins
            log.warning("rate limits without Redis (per process) for now: %s", error)
            return self._fallback.hit(key, window)
        return int(count)

    def count(self, key: str, window: int) -> int:
        try:
            value = self._client.get(self._key(key, window))
        except Exception as error:  # noqa: BLE001
            log.warning("rate limits without Redis (per process) for now: %s", error)
            return self._fallback.count(key, window)
        return int(value or 0)

    def undo(self, key: str, window: int) -> None:
        try:
            self._client.eval(_UNDO_SCRIPT, 1, self._key(key, window))
        except Exception as error:  # noqa: BLE001
            log.warning("rate limits without Redis (per process) for now: %s", error)
            self._fallback.undo(key, window)

    def reset(self, key: str) -> None:
        self._fallback.reset(key)
        try:
            for redis_key in self._client.scan_iter(f"{self._prefix}{key}:*"):
                self._client.delete(redis_key)
        except Exception as error:  # noqa: BLE001
            log.warning("could not reset a rate limit in Redis: %s", error)


def make_store(message_queue: str | None) -> RateLimitStore:
    if message_queue and message_queue.startswith("redis"):
        from conference.config import redis_client

        return RedisRateLimitStore(redis_client(message_queue))
    return MemoryRateLimitStore()


# --- limits in a request ------------------------------------------------------------------------------------


class Limit(NamedTuple):
    allowed: int
    seconds: int


def init_rate_limits(app: Flask) -> None:
    """Pick the store (the limits were checked with every setting) and add `Retry-After` to refusals."""
    app.extensions["conference_rate_limits"] = make_store(get_settings(app).message_queue)
    app.after_request(_answer_refusal)


def _answer_refusal(response: Response) -> Response:
    """A request a limit refused answers 429 with `Retry-After`, also where the view shows its form again."""
    retry_after = g.get("rate_limit_retry_after")
    if retry_after is not None and response.status_code >= 400:
        response.status_code = 429
        response.headers["Retry-After"] = str(retry_after)
    return response


_proxy_warning_logged = False


def client_address() -> str:
    """The client as the limits count it: an IPv4 address, or the /64 network of an IPv6 address.

    One IPv6 subscriber holds a whole /64 (2^64 addresses), so counting single addresses would count nothing.
    The address is the socket peer unless `TRUSTED_PROXY_COUNT` makes `X-Forwarded-For` believed.
    """
    global _proxy_warning_logged
    raw = request.remote_addr or ""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if not _proxy_warning_logged and address.is_loopback and "X-Forwarded-For" in request.headers \
            and not get_settings().trusted_proxy_count:
        _proxy_warning_logged = True
        log.warning("requests come through a local proxy but TRUSTED_PROXY_COUNT is 0: every client counts as "
                    "one address for the rate limits")
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Counter:
    """One limit applied to one key, e.g. `Counter("LOGIN_FAILURE_LIMIT_ACCOUNT", email)`.

    The key parts are hashed: no e-mail address ends up in Redis, and keys stay short.
    """

    def __init__(self, setting: str, *key: str, reason: str = "", limit: Limit | None = None) -> None:
        self.setting = setting
        self.limit = limit or Limit(*getattr(get_settings(), setting.lower()))
        digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:32]
        self.key = f"{setting.lower()}:{digest}"
        self.reason = reason
        self._store: RateLimitStore = current_app.extensions["conference_rate_limits"]

    def hit(self) -> int:
        return self._store.hit(self.key, self.limit.seconds)

    def count(self) -> int:
        return self._store.count(self.key, self.limit.seconds)

    def undo(self) -> None:
        self._store.undo(self.key, self.limit.seconds)

    def is_reached(self) -> bool:
        return self.count() >= self.limit.allowed

    def refuse(self) -> NoReturn:
        """Raise `RateLimited` saying when to try again; the answer gets `Retry-After`."""
        retry_after = max(1, math.ceil(window_end(self.limit.seconds) - time.time()))
        g.rate_limit_retry_after = max(retry_after, g.get("rate_limit_retry_after") or 0)
        later = _("Please try again in %(minutes)d min.", minutes=math.ceil(retry_after / 60))
        reason = self.reason or _("Too many attempts.")
        raise RateLimited(f"{reason} {later}")


def limit_or_429(setting: str, *key: str, reason: str = "") -> None:
    """Count one request against the limit `setting` for `key`; refuse it (429) when it is over.

    For requests that cost something when they succeed: creating accounts, issuing tokens, sending mails, e.g.
    `limit_or_429("MAIL_REQUEST_LIMIT_ADDRESS", client_address(), reason=_("Too many mails were requested."))`.
    """
    counter = Counter(setting, *key, reason=reason)
    if counter.hit() > counter.limit.allowed:
        counter.refuse()


class Attempt:
    """A try at a secret, counted as a failure under each counter from the start (see the module docstring).

    `begin()` refuses (429) when a counter is over its limit, before the secret is checked: a locked account
    refuses its right password too, or the lock would not stop the guessing. Call `give_back()` when the secret
    was right (or was not checked after all).
    """

    def __init__(self, *counters: Counter) -> None:
        self.counters = counters
        self._counted: list[Counter] = []

    def begin(self) -> Attempt:
        for counter in self.counters:
            self._counted.append(counter)
            if counter.hit() > counter.limit.allowed:
                counter.refuse()
        return self

    def give_back(self) -> None:
        for counter in self._counted:
            counter.undo()
        self._counted = []
