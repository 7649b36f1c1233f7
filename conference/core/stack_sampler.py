"""Where the event loop's thread is, sampled from a native thread: names the code behind a stall.

The loop probe (`loop_probe`) notices that the loop was held and which requests were in flight, but a
websocket is one long request: when a chat fan-out or a join storm holds the loop, "GET /socket.io/" is all it
can say. With `CONFERENCE_LOOP_PROBE_STACKS` on, a native (unpatched) thread looks at the loop thread's stack
every `every` seconds (`sys._current_frames`) and keeps a short ring of samples; a stall then names the code
locations sampled while it lasted, most frequent first.

A location is the innermost frame of the project (`conference/...:line function`) followed by the innermost
frame overall when that is in a library (`> json/encoder.py iterencode`): the call of ours that held the loop
and what it was doing there. Cost: the sampler takes the GIL for a few microseconds per sample (about 1 % of a
core at the default 5 ms), so it is off by default; bench/soak.py switches it on.
"""

from __future__ import annotations

import collections
import importlib
import os
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

PROJECT = os.sep + "conference" + os.sep
KEEP_SAMPLES = 4096  # 20 s at 5 ms: longer than any stall worth naming
SHOW_LOCATIONS = 3


def unpatched(module: str, name: str) -> Any:
    """`module.name` as the standard library has it, also after eventlet's or gevent's monkey-patching."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched(module.lstrip("_")):
            return getattr(patcher.original(module), name)
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched(module):
            return monkey.get_original(module, name)
    return getattr(importlib.import_module(module), name)


def _short(filename: str) -> str:
    """`conference/live/chat.py` for project files, `json/encoder.py` for a library's: the last two parts."""
    at = filename.rfind(PROJECT)
    if at != -1:
        return filename[at + 1:]
    parts = filename.split(os.sep)
    return os.sep.join(parts[-2:])


def describe(frame: FrameType | None) -> str:
    """One sample's location: the innermost project frame, and the innermost frame when that is elsewhere."""
    if frame is None:
        return "?"
    innermost = frame
    while frame is not None and PROJECT not in frame.f_code.co_filename:
        frame = frame.f_back
    inner = f"{_short(innermost.f_code.co_filename)} {innermost.f_code.co_name}"
    if frame is None:
        return inner
    own = f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_name}"
    return own if frame is innermost else f"{own} > {inner}"


class StackSampler:
    """Samples the stack of the thread `thread_id` every `every` seconds in a native thread (`start()`)."""

    def __init__(self, thread_id: int, *, every: float = 0.005,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.thread_id, self.every, self.clock = thread_id, every, clock
        self.samples: collections.deque[tuple[float, str]] = collections.deque(maxlen=KEEP_SAMPLES)

    def start(self) -> None:
        unpatched("_thread", "start_new_thread")(self._run, (unpatched("time", "sleep"),))

    def sample(self) -> None:
        frame = sys._current_frames().get(self.thread_id)  # noqa: SLF001 - the documented way to see a thread's stack
        self.samples.append((self.clock(), describe(frame)))
        del frame

    def _run(self, sleep: Callable[[float], object]) -> None:
        while True:
            sleep(self.every)
            try:
                self.sample()
            except Exception:  # noqa: S112 - a sample missed is no reason to stop sampling
                continue

    def during(self, since: float, until: float) -> tuple[str, ...]:
        """The locations sampled between `since` and `until`, most frequent first, each with its share."""
        counts = collections.Counter(where for at, where in list(self.samples) if since <= at <= until)
        total = sum(counts.values())
        return tuple(f"{where} ({count * 100 // total} %)" for where, count in counts.most_common(SHOW_LOCATIONS))


def sampler_for_this_thread(every: float) -> StackSampler:
    """A started sampler of the calling OS thread (the event loop's when called from a green task; the patched
    `threading.get_ident` would name the green task)."""
    sampler = StackSampler(unpatched("_thread", "get_ident")(), every=every)
    sampler.start()
    return sampler
