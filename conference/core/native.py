"""Native threads for work that releases the GIL (hashing, disk writes), awaited without blocking the loop.

Under eventlet or gevent an ordinary `threading.Thread` is a green thread: hashing or writing 100 MB in it
still holds up every other connection, and it never runs beside the loop on the second core.
`conference.serving.server.prepare_async` installs the event loop's own pool of native threads here; without an event
loop (tests in threading mode, the CLI) an ordinary thread pool does the work.

    finished = native.submit(digest.update, piece)   # runs now, on another core
    ...                                             # read the next piece meanwhile
    finished()                                      # waits (cooperatively), returns the result or raises
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Submit = Callable[..., Callable[[], Any]]

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _submit_to_thread_pool(function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="native")
    return _pool.submit(function, *args).result


_submit: Submit = _submit_to_thread_pool


def install(submit: Submit) -> None:
    """Use `submit(function, *args) -> wait` of the running event loop (see `conference.serving.server`)."""
    global _submit
    _submit = submit


def submit(function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """Start `function(*args)` in a native thread; the returned callable waits for it and returns its result."""
    return _submit(function, *args)


@contextmanager
def temporary_directory(prefix: str) -> Iterator[Path]:
    """A temporary directory for a child's files, made and removed in a native thread.

    Removing a file that was just written (a cleaned PDF, a resized photo) waits for the file system's journal
    while the disk is busy: 18 ms for one directory here under upload load (strace), longer on slower disks,
    and on the event loop every connection would wait with it.
    """
    work = Path(submit(tempfile.mkdtemp, None, prefix)())
    try:
        yield work
    finally:
        submit(shutil.rmtree, str(work), True)()
