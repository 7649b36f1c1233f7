"""Child processes for work on untrusted files: minimal environment, resource limits, wall-clock timeout.

`run_child("conference.presentations.render", [src, dst], limits=...)` starts
`python -m conference.core.sandbox <limits> <module> <args>` in the project folder with nothing of the
server's environment but PATH and LANG (no CONFERENCE_* secrets, no database URL): the sandbox sets
RLIMIT_AS, RLIMIT_CPU, RLIMIT_NOFILE and its nice level before the module is imported, so a hostile file
costs at most those limits. The child is waited for by polling with the async mode's own sleep (green under
eventlet and gevent, so the event loop keeps serving) and killed when its wall-clock time runs out.

At most `slots` children run at once in this process: a flood of work waits for a slot (a green wait), so
the memory of all children together stays within slots x limits.memory_bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
POLL_SECONDS = 0.02
OUTPUT_LIMIT = 64 * 1024  # the child's answer (JSON on stdout) and its error text are small


@dataclass(frozen=True)
class Limits:
    """What one child may use."""

    memory_bytes: int = 512 * 1024 * 1024  # RLIMIT_AS: address space, so a bomb fails its allocation
    cpu_seconds: int = 30  # RLIMIT_CPU: SIGXCPU, then SIGKILL
    wall_seconds: float = 60.0  # killed after this long whatever it does (e.g. blocked)
    open_files: int = 64  # RLIMIT_NOFILE
    nice: int = 10

    def argv(self) -> list[str]:
        return [str(self.memory_bytes), str(self.cpu_seconds), str(self.open_files), str(self.nice)]


class ChildFailed(Exception):
    """The child exited with an error, was killed by a limit or ran out of time; `reason` says which."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # "error", "timeout", "killed"
        self.detail = detail


class _Slots:
    """A counting semaphore: a threading one, so green under eventlet's and gevent's monkey-patching (a waiting
    upload costs nothing until a slot frees) and real in threading mode."""

    def __init__(self, size: int = 2) -> None:
        self._lock = threading.Lock()
        self.size = size
        self.busy = 0
        self._semaphore = threading.Semaphore(size)

    def resize(self, size: int) -> None:
        """At start-up, before any child runs."""
        self.size, self._semaphore = size, threading.Semaphore(size)

    def acquire(self) -> threading.Semaphore:
        semaphore = self._semaphore
        semaphore.acquire()
        with self._lock:
            self.busy += 1
        return semaphore

    def release(self, semaphore: threading.Semaphore) -> None:
        with self._lock:
            self.busy -= 1
        semaphore.release()


slots = _Slots()


def configure(*, workers: int) -> None:
    """Children at once in this process (CONFERENCE_JOB_WORKERS)."""
    if max(1, workers) != slots.size:
        slots.resize(max(1, workers))


def minimal_environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def run_child(module: str, args: list[str], *, limits: Limits, sleep: Callable[[float], Any] = time.sleep,
              on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run `python -m module args` in the sandbox; returns the JSON object it printed (or {}).

    Raises `ChildFailed` on a non-zero exit, a kill by a limit or the wall-clock timeout (the child is
    killed then). Waits for a free slot first.
    """
    semaphore = slots.acquire()
    try:
        return _run(module, args, limits=limits, sleep=sleep, on_start=on_start)
    finally:
        slots.release(semaphore)


def _run(module: str, args: list[str], *, limits: Limits, sleep: Callable[[float], Any],
         on_start: Callable[[int], None] | None) -> dict[str, Any]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-s", "-m", "conference.core.sandbox", *limits.argv(), module, *args],
            cwd=PROJECT_ROOT, env=minimal_environment(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            close_fds=True, start_new_session=True)
        if on_start is not None:
            on_start(process.pid)
        deadline = time.monotonic() + limits.wall_seconds
        try:
            while process.poll() is None:
                if time.monotonic() >= deadline:
                    _kill(process)
                    raise ChildFailed("timeout", f"no result within {limits.wall_seconds:g} s")
                sleep(POLL_SECONDS)
        except BaseException:
            _kill(process)
            raise
        err.seek(0)
        detail = err.read(OUTPUT_LIMIT).decode("utf-8", "replace").strip()[-500:]
        if process.returncode < 0:
            name = signal.Signals(-process.returncode).name
            raise ChildFailed("killed", f"{name} {detail}".strip())
        if process.returncode != 0:
            raise ChildFailed("error", detail or f"exit {process.returncode}")
        out.seek(0)
        text = out.read(OUTPUT_LIMIT).decode("utf-8", "replace").strip()
    if not text:
        return {}
    try:
        answer = json.loads(text.splitlines()[-1])
    except ValueError:
        raise ChildFailed("error", f"unreadable answer: {text[-200:]}") from None
    return answer if isinstance(answer, dict) else {}


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: anything it started goes too
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
