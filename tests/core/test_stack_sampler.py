"""The stack sampler names the code a thread is in: the innermost project frame and the library call below it.
(Its use in a real server, where a stall names the code that held the loop, is in test_loop_probe.)"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from conference.core.stack_sampler import StackSampler, describe, unpatched
from conference.core.text import has_forbidden_text


def _function(source: str, filename: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - code of the test's own, under a given file name
    return namespace["function"]


def test_a_location_is_the_project_frame_and_the_library_frame_below_it() -> None:
    handler = _function("def function(call, grab):\n    return call(grab)\n", "/srv/app/conference/live/chat.py")
    library = _function("def function(grab):\n    return grab()\n", "/usr/lib/python3.11/json/encoder.py")

    in_library = handler(library, lambda: sys._getframe(1))  # noqa: SLF001 - the library function's frame
    assert describe(in_library) == "conference/live/chat.py:2 function > json/encoder.py function"
    in_project = handler(lambda grab: grab(), lambda: sys._getframe(2))  # noqa: SLF001 - the handler's frame
    assert describe(in_project) == "conference/live/chat.py:2 function"
    nowhere = library(lambda: sys._getframe(1))  # noqa: SLF001 - no project frame at all: the innermost alone
    assert describe(nowhere) == "json/encoder.py function"
    assert describe(None) == "?"


def test_samples_of_another_thread_are_counted_by_location() -> None:
    """A thread busy in project code (`has_forbidden_text` on a long text) is sampled from the test's thread; `during` gives the
    locations of a time span with their shares, most frequent first."""
    stop = threading.Event()
    ident: list[int] = []
    long_text = "Grüße aus Köln " * 200_000  # a search of 3 MB: nearly all the time inside the project function

    def busy() -> None:
        ident.append(threading.get_ident())
        while not stop.is_set():
            has_forbidden_text(long_text)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        while not ident:
            time.sleep(0.001)
        sampler = StackSampler(ident[0])
        began = time.monotonic()
        for _ in range(40):
            sampler.sample()
            time.sleep(0.002)
        ended = time.monotonic()
    finally:
        stop.set()
        worker.join()

    found = sampler.during(began, ended)
    assert found[0].startswith("conference/core/text.py:") and " has_forbidden_text (" in found[0], found
    assert sampler.during(ended + 1, ended + 2) == ()


def test_unpatched_is_the_standard_library_without_an_event_loop() -> None:
    assert unpatched("time", "sleep") is time.sleep
    import _thread

    assert unpatched("_thread", "get_ident") is _thread.get_ident
