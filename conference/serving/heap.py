"""Garbage collection without long pauses of the event loop.

CPython's full collection walks every tracked object, and a server with thousands of open connections holds
about 160 of them per connection (green threads, timers, socket wrappers, Engine.IO state). At 5,000
connections a full collection stops the one event-loop thread for 100-600 ms, and it comes whenever the
long-lived objects have grown by a quarter: during a busy chat as likely as at any other time.

`HeapKeeper` keeps the long-lived objects out of those collections. Every `interval` seconds it runs a
young collection and then `gc.freeze()`, which moves every surviving object into the permanent generation
(a list splice, no walk). Automatic collections, full ones included, then walk only what was created since.

Frozen objects are still freed by reference counting the moment nothing refers to them; only garbage
*cycles* among them stay until a reclaim: unfreeze, one full collection, freeze again. A reclaim is a pause as
long as CPython's own full collection (0.2-1 s: it walks the whole heap, the start-up heap included), so it
never runs while anyone is there: only when no socket is open and no request is in flight, and at most once
every `reclaim_every` seconds (after the event, at night, between sessions of a quiet instance).

That is safe because a closed connection leaves no cycles: there were three per connection (about 42 objects),
all broken now at their source: eventlet's `set_idle` closure in the environ (`wsgi.fair_turns`), the
`ws.wait` wrapper on the websocket (`websocket_io`), and the NotFound that every Socket.IO event's request
context raised and stored, with a traceback up through the connection's reader frame (the `/socket.io/` rules
in `factory`). tests/core/test_heap_cycles.py counts what a reclaim frees after clients chatted, asked, voted,
reacted, sent bad payloads and left, under eventlet and gevent.

The keeper never asks for the size of the frozen heap: `gc.get_freeze_count()` walks the whole permanent
generation (about 0.3 s at 5,000 connections, measured with perf), a pause of the kind this module avoids.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from conference.serving import fence

log = logging.getLogger("conference.heap")
SEAM = "heap keeper (CPython's generational collector)"
# Tested with the generational collector of 3.11-3.13; 3.14 collects the old generation incrementally, so
# freezing no longer buys what it did (and needs measuring again) before the range moves.
TESTED_PYTHON = ((3, 11), (3, 14))


def heap_keeping_allowed(version: tuple[int, ...] | None = None) -> bool:
    """Whether this interpreter is one the keeper was measured on (else CPython's own schedule runs)."""
    version = version or sys.version_info[:2]
    low, high = TESTED_PYTHON
    if sys.implementation.name != "cpython" or not low <= version[:2] < high:
        fence.off(SEAM, f"{sys.implementation.name} {'.'.join(map(str, version[:2]))} is outside the tested "
                  "CPython 3.11 to 3.14 (exclusive)", fallback="the interpreter's own collection schedule")
        return False
    return fence.allows(SEAM, (), ((gc, "freeze"), (gc, "unfreeze")),
                        fallback="the interpreter's own collection schedule")


@dataclass
class HeapKeeper:
    """Freezes what survives a young collection; reclaims frozen garbage cycles every `reclaim_every` s."""

    reclaim_every: float = 600.0
    clock: Callable[[], float] = time.monotonic
    is_idle: Callable[[], bool] = lambda: True  # noqa: E731 - the server passes "no socket, no request"
    last_reclaim_at: float | None = None
    reclaims: int = 0
    reclaimed_objects: int = 0

    def tend(self) -> None:
        """One step: freeze the survivors of a young collection; reclaim frozen cycles when it is time.

        The first step reclaims (nothing was frozen yet, and nobody is connected): the start-up heap (modules,
        app, mappers) is collected once and frozen, as it lives as long as the process. Later reclaims wait for
        an idle server.
        """
        gc.collect(1)
        gc.freeze()
        if self.last_reclaim_at is None or self._reclaim_due():
            self.reclaim()

    def _reclaim_due(self) -> bool:
        assert self.last_reclaim_at is not None
        return self.reclaim_every > 0 and self.clock() - self.last_reclaim_at >= self.reclaim_every \
            and self.is_idle()

    def reclaim(self) -> int:
        """Free the garbage cycles among frozen objects (one full collection); returns how many were freed."""
        began = self.clock()
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        self.last_reclaim_at = self.clock()
        took = self.last_reclaim_at - began
        self.reclaims += 1
        self.reclaimed_objects += freed
        log.info("heap reclaim: %d garbage objects freed in %.0f ms", freed, took * 1000)
        return freed


def keep_heap(keeper: HeapKeeper, *, interval: float, sleep: Callable[[float], object]) -> None:
    """Run `keeper.tend` every `interval` seconds, forever (a background task of the server)."""
    while True:
        sleep(interval)
        try:
            keeper.tend()
        except Exception:  # the keeper must outlive any surprise; CPython's own collector still runs
            log.exception("heap keeper step failed")
