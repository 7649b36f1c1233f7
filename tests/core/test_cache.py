"""The one cache class: lifetime read at lookup, the loader's own deadline, least recently used first out,
`forget` that a racing load cannot undo, None never kept."""

from __future__ import annotations

import time

from conference.core.cache import ExpiringCache


def test_least_recently_used_goes_first_beyond_the_limit() -> None:
    cache: ExpiringCache[str, str] = ExpiringCache(max_entries=2)
    cache.get("a", lambda: "A")
    cache.get("b", lambda: "B")
    assert cache.get("a", lambda: "reloaded") == "A"  # a is now the most recent
    cache.get("c", lambda: "C")
    assert sorted(cache.values()) == ["A", "C"] and len(cache) == 2


def test_a_value_is_kept_no_longer_than_its_loader_says() -> None:
    cache: ExpiringCache[str, tuple[str, float | None]] = ExpiringCache(ttl=60)
    assert cache.get("now", lambda: ("x", 0.0), keep_for=lambda v: v[1]) == ("x", 0.0)
    assert len(cache) == 0  # true for no time at all: not kept
    cache.get("soon", lambda: ("y", 0.05), keep_for=lambda v: v[1])
    assert cache.get("soon", lambda: ("reloaded", None), keep_for=lambda v: v[1]) == ("y", 0.05)
    time.sleep(0.06)
    assert cache.get("soon", lambda: ("reloaded", None), keep_for=lambda v: v[1]) == ("reloaded", None)


def test_nothing_is_kept_for_none_and_lowering_the_ttl_expires_at_once() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(ttl=60)
    assert cache.get("missing", lambda: None) is None and len(cache) == 0
    cache.get("a", lambda: 1)
    cache.ttl = 0
    assert cache.get("a", lambda: 2) == 2
