"""The one cache class: lifetime read at lookup, the loader's own deadline, least recently used first out,
`forget` that a racing load cannot undo, None never kept."""

from __future__ import annotations

import threading
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


def test_callers_that_miss_a_key_being_loaded_wait_for_that_load() -> None:
    """A reconnect storm: many joins of one room at once run one load, not one each."""
    cache: ExpiringCache[str, str] = ExpiringCache(ttl=60)
    loads: list[str] = []

    def slow_load() -> str:
        loads.append(threading.current_thread().name)
        time.sleep(0.2)
        return "room"

    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("lobby", slow_load)), name=f"t{i}")
               for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["room"] * 20
    assert len(loads) == 1


def test_when_the_load_they_waited_for_keeps_nothing_the_waiters_load_themselves() -> None:
    cache: ExpiringCache[str, str] = ExpiringCache(ttl=60)
    started = threading.Event()
    outcomes: list[object] = []

    def failing_load() -> str:
        started.set()
        time.sleep(0.2)
        raise RuntimeError("database gone")

    def first() -> None:
        try:
            cache.get("lobby", failing_load)
        except RuntimeError as error:
            outcomes.append(error)

    owner = threading.Thread(target=first)
    owner.start()
    started.wait()
    waiters = [threading.Thread(target=lambda: outcomes.append(cache.get("lobby", lambda: "fresh")))
               for _ in range(5)]
    for thread in [*waiters]:
        thread.start()
    for thread in [owner, *waiters]:
        thread.join()
    assert sorted(map(str, outcomes)) == ["database gone"] + ["fresh"] * 5
    assert cache.get("lobby", lambda: "not again") == "fresh"


def test_a_load_overlapped_by_forget_is_not_kept_and_its_waiters_load_again() -> None:
    """A mute while a standing loads: neither the loader's nor the waiters' answer may be the old one later."""
    cache: ExpiringCache[str, str] = ExpiringCache(ttl=60)
    started = threading.Event()
    answers: list[str | None] = []

    def old_load() -> str:
        started.set()
        time.sleep(0.2)
        return "not muted"

    owner = threading.Thread(target=lambda: answers.append(cache.get("person", old_load)))
    owner.start()
    started.wait()
    waiter = threading.Thread(target=lambda: answers.append(cache.get("person", lambda: "muted")))
    waiter.start()
    time.sleep(0.05)
    cache.forget(lambda key: key == "person")  # the mute commits while both are in flight
    owner.join()
    waiter.join()
    assert sorted(answers) == ["muted", "not muted"]  # the loader returns what it read, the waiter reloads
    assert cache.get("person", lambda: "reloaded") in ("muted", "reloaded")


def test_a_waiter_gives_up_waiting_after_wait_for_load() -> None:
    cache: ExpiringCache[str, str] = ExpiringCache(ttl=60, wait_for_load=0.05)
    started, release = threading.Event(), threading.Event()

    def stuck_load() -> str:
        started.set()
        release.wait(5)
        return "late"

    owner = threading.Thread(target=lambda: cache.get("page", stuck_load))
    owner.start()
    started.wait()
    began = time.monotonic()
    assert cache.get("page", lambda: "own") == "own"
    assert time.monotonic() - began < 2
    release.set()
    owner.join()


def test_a_load_slower_than_the_lifetime_still_serves_everyone_who_waited_for_it() -> None:
    """In a storm the load itself queues for a database connection, longer than the cache keeps values;
    the callers that waited for it take its value instead of each loading again."""
    cache: ExpiringCache[str, str] = ExpiringCache(ttl=0.05)
    loads: list[int] = []

    def slow_load() -> str:
        loads.append(1)
        time.sleep(0.2)  # four lifetimes
        return "room"

    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("lobby", slow_load))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["room"] * 10 and len(loads) == 1


def test_after_forget_no_one_is_handed_a_value_loaded_before_it() -> None:
    """The load finished and was kept just before a mute committed, but its waiters wake after the mute: they
    and everyone asking after the forget load again."""
    cache: ExpiringCache[str, str] = ExpiringCache(ttl=60)
    kept, proceed = threading.Event(), threading.Event()
    answers: list[str | None] = []
    original_keep = cache._keep

    def keep_then_pause(*args: object, **kwargs: object) -> None:
        original_keep(*args, **kwargs)  # type: ignore[arg-type]
        kept.set()
        proceed.wait(5)  # the owner has kept the value but not yet woken its waiters

    cache._keep = keep_then_pause  # type: ignore[method-assign]
    def old_load() -> str:
        time.sleep(0.1)
        return "not muted"

    owner = threading.Thread(target=lambda: answers.append(cache.get("person", old_load)))
    owner.start()
    time.sleep(0.02)
    waiter = threading.Thread(target=lambda: answers.append(cache.get("person", lambda: "muted")))
    waiter.start()  # waits for the owner's load
    kept.wait(5)
    cache._keep = original_keep  # type: ignore[method-assign]
    cache.forget(lambda key: key == "person")
    after = cache.get("person", lambda: "muted")  # asked after the forget: not the old value
    proceed.set()
    owner.join()
    waiter.join()
    assert after == "muted"
    assert sorted(answers) == ["muted", "not muted"]  # the owner returns what it read; the waiter reloaded
