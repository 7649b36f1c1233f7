"""Event-loop lag probe: how late a short sleep wakes up, and which requests were in flight when it woke late.

Under eventlet and gevent every connection shares one thread. A request that computes for 200 ms without
yielding (a huge JSON body parsed, a zip written) holds up every other connection for those 200 ms, and no
request log shows it: each request's own time looks normal except the culprit's. The probe is a background
task that sleeps `interval` (10 ms) over and over and records how much later than asked it woke: the lag is
the time the loop was not free to run it. It keeps the largest lag, a histogram (for a metrics endpoint) and
the most recent stalls over `stall` ms, each with the requests that were in flight while the loop was held
(`middleware` notes every request's method, path and start/end), so a test or an operator can name the
culprit. Stalls over `log` ms are logged as warnings.

Each stall also says how the time went, from the scheduler's account of the loop's thread
(/proc/thread-self/schedstat): `cpu_ms` computing (work in the loop), `wait_ms` ready to run but waiting for
a CPU (a busy host, not the server's doing); the rest was a blocking system call or a stopped process. So
`lag_ms - wait_ms` is how long the server itself held its loop, on a quiet machine or a busy one.

Set `CONFERENCE_LOOP_PROBE_FILE` to have the figures written there (JSON, atomically replaced by a native
thread every 0.25 s; `{pid}` in the name is replaced by the worker's pid): the adversarial suite and
bench/soak.py read them.
`/metrics` shows the lag histogram (conference/core/metrics.py).

Cost, measured on the development machine (eventlet and gevent alike): about 80 us per wake-up, 0.8 % of one
core on an idle server, of which the probe's own work is 5 us; the rest is the loop waking up at all, which
a busy server does for its traffic anyway. The middleware adds 2 us per request (4 us with a streamed body).
That buys a warning naming the request whenever the loop is held for 100 ms, so it is on by default.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conference.core import native
from conference.core.stack_sampler import StackSampler, sampler_for_this_thread
from conference.settings import settings_of

log = logging.getLogger("conference.loop_probe")

#: Upper bounds of the histogram's buckets (ms); one more bucket counts everything above the last.
BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
KEEP_STALLS = 100  # the most recent stalls in the figures
KEEP_FINISHED = 256  # finished requests remembered for attributing the stall that was noticed after them
SHOW_REQUESTS = 8  # requests named per stall (the most recently started first)

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


@dataclass(frozen=True)
class ProbeSettings:
    """`CONFERENCE_LOOP_PROBE*` settings, parsed once."""

    enabled: bool = True
    interval: float = 0.010  # seconds between wake-ups
    stall: float = 0.020  # lags from this long on are kept with their requests
    log: float = 0.100  # ... and from this long on also logged
    file: str | None = None
    write_every: float = 0.25
    stacks: bool = False  # sample the loop thread's stack, so stalls name code (`stack_sampler`)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProbeSettings:
        settings = settings_of(config)
        return cls(enabled=settings.loop_probe, interval=settings.loop_probe_interval_ms / 1000,
                   stall=settings.loop_probe_stall_ms / 1000, log=settings.loop_probe_log_ms / 1000,
                   # `{pid}` in the name: one file per worker process (bench/soak.py reads them all).
                   file=(settings.loop_probe_file or "").replace("{pid}", str(os.getpid())) or None,
                   stacks=settings.loop_probe_stacks)


@dataclass(frozen=True)
class Stall:
    at: float  # wall-clock time (epoch seconds) the probe woke
    lag_ms: float
    cpu_ms: float  # the loop's thread computing
    wait_ms: float  # the loop's thread ready to run, waiting for a CPU
    requests: tuple[str, ...]  # in flight while the loop was held, most recently started first
    code: tuple[str, ...] = ()  # where the loop's thread was sampled meanwhile (with `stacks` on)

    def as_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 4), "lag_ms": round(self.lag_ms, 1), "cpu_ms": round(self.cpu_ms, 1),
                "wait_ms": round(self.wait_ms, 1), "requests": list(self.requests), "code": list(self.code)}


Describe = Callable[[str, str, str], str]
Scheduler = Callable[[], tuple[float, float]]  # () -> (seconds on a CPU, seconds runnable but waiting)


def thread_scheduler() -> Scheduler:
    """The calling thread's CPU time and run-queue wait from /proc/thread-self/schedstat (one pread each);
    without it (not Linux) the CPU time alone, with no wait."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return lambda: (time.thread_time(), 0.0)

    def read() -> tuple[float, float]:
        on_cpu, waiting = os.pread(fd, 100, 0).split()[:2]
        return int(on_cpu) / 1e9, int(waiting) / 1e9

    return read



def plain_request(method: str, path: str, query: str) -> str:
    return f"{_printable(method, 10)} {_printable(path, 80)}"


def _printable(text: str, limit: int) -> str:
    """Attacker-chosen paths go into log lines: ASCII letters and punctuation only, bounded."""
    cleaned = "".join(ch if " " < ch < "\x7f" else "?" for ch in text[:limit])
    return cleaned + ("..." if len(text) > limit else "")


def route_describer(url_map: Any) -> Describe:
    """Name requests by their URL rule (`GET /events/<slug>/calendar/<token>.ics`): no ids, no secrets."""
    adapter = url_map.bind("localhost")

    def describe(method: str, path: str, query: str) -> str:
        if path.startswith("/socket.io/"):
            return f"{_printable(method, 10)} /socket.io/ (" + (
                "websocket" if "transport=websocket" in query else "polling") + ")"
        try:
            rule, _arguments = adapter.match(path, method, return_rule=True)
        except Exception:  # no such route, wrong method, a redirect: the path itself
            return plain_request(method, path, query) + " (no route)"
        return f"{_printable(method, 10)} {rule.rule}"

    return describe


class LoopProbe:
    """The lag figures and the requests in flight; `run` is the background task, `middleware` the WSGI part."""

    def __init__(self, settings: ProbeSettings, *, describe: Describe = plain_request,
                 clock: Callable[[], float] = time.monotonic, scheduler: Scheduler | None = None) -> None:
        self.settings = settings
        self.describe = describe
        self.clock = clock
        self.scheduler = scheduler
        self.observe: Callable[[float], object] | None = None  # e.g. the metrics' loop-lag histogram
        self.wall_offset = time.time() - clock()
        self.ticks = 0
        self.lag_sum = 0.0
        self.max_lag = 0.0
        self.counts = [0] * (len(BUCKETS_MS) + 1)
        self.stalls: deque[Stall] = deque(maxlen=KEEP_STALLS)
        self._ids = itertools.count()
        self._open: dict[int, tuple[float, str, str, str]] = {}  # id -> (started, method, path, query)
        self._finished: deque[tuple[float, float, str, str, str]] = deque(maxlen=KEEP_FINISHED)
        self._written_at = 0.0
        self._publishing = False  # a native thread is writing the figures file
        self.sampler: StackSampler | None = None

    # --- the background task ---------------------------------------------------------------------------

    def run(self, sleep: Callable[[float], object]) -> None:
        """Sleep `interval`, note how late it woke, forever (start it with `socketio.start_background_task`)."""
        interval = self.settings.interval
        scheduler = self.scheduler or thread_scheduler()  # opened here: the loop's own thread
        if self.settings.stacks and self.sampler is None:
            self.sampler = sampler_for_this_thread(every=min(0.005, self.settings.interval / 2))
        began, (cpu, waited) = self.clock(), scheduler()
        while True:
            sleep(interval)
            try:
                woke, (cpu_after, waited_after) = self.clock(), scheduler()
                self.record(began, woke, cpu_after - cpu, waited_after - waited)
                # The next wait is counted from this wake-up, not from the next sleep call: a pause that falls
                # while the probe itself records or writes its file is a late wake-up too, not a gap.
                began, cpu, waited = woke, cpu_after, waited_after
                if self.settings.file and self.clock() - self._written_at >= self.settings.write_every:
                    self.publish(self.settings.file)
            except Exception:  # the probe must outlive any surprise (a full disk for the figures file)
                log.exception("loop probe step failed")
                self._written_at = self.clock()  # not again before the next interval
                began, (cpu, waited) = self.clock(), scheduler()

    def record(self, began: float, woke: float, cpu: float = 0.0, waited: float = 0.0) -> None:
        """One wake-up: `began` when the sleep was asked for, `woke` when it returned; meanwhile the loop's
        thread computed for `cpu` seconds and waited for a CPU for `waited` seconds."""
        lag = max(0.0, woke - began - self.settings.interval)
        self.ticks += 1
        self.lag_sum += lag
        self.max_lag = max(self.max_lag, lag)
        self.counts[bisect.bisect_left(BUCKETS_MS, lag * 1000)] += 1
        if self.observe is not None:
            self.observe(lag)
        if lag < self.settings.stall or lag == 0:
            return
        # The loop was not free from the moment the probe was due until it ran: the culprit was in flight then.
        due = woke - lag
        stall = Stall(woke + self.wall_offset, lag * 1000, cpu * 1000, min(waited, lag) * 1000,
                      self.requests_during(due, woke), self.sampler.during(due, woke) if self.sampler else ())
        self.stalls.append(stall)
        if lag >= self.settings.log:
            log.warning("event loop held for %.0f ms (%.0f ms CPU, %.0f ms waiting for a CPU); in flight: %s%s",
                        stall.lag_ms, stall.cpu_ms, stall.wait_ms, "; ".join(stall.requests) or "no request",
                        f"; code: {'; '.join(stall.code)}" if stall.code else "")

    def requests_during(self, since: float, until: float) -> tuple[str, ...]:
        """The requests in flight at some time between `since` and `until`, most recently started first.

        Open requests are kept in the order they started, so only the newest few are looked at: with 10,000
        websockets open (each one request for its whole life) a scan of all of them on every stall cost 5 % of
        a worker's time during a reconnect storm."""
        newest: list[tuple[float, str, str, str]] = []
        started_later = 0  # open requests that began after `until` (the newest ones, at the end)
        for entry in reversed(self._open.values()):
            if entry[0] > until:
                started_later += 1
            elif len(newest) < SHOW_REQUESTS:
                newest.append(entry)
            else:
                break
        found = newest + [(started, method, path, query) for started, ended, method, path, query in self._finished
                          if ended >= since and started <= until]
        total = len(self._open) - started_later + len(found) - len(newest)
        found.sort(key=lambda item: item[0], reverse=True)
        names = [self.describe(method, path, query) for _started, method, path, query in found[:SHOW_REQUESTS]]
        if total > SHOW_REQUESTS:
            names.append(f"and {total - SHOW_REQUESTS} more")
        return tuple(names)

    # --- requests ------------------------------------------------------------------------------------------

    def middleware(self, app: WSGIApp) -> WSGIApp:
        """Wrap a WSGI app so that every request is known as in flight until its response is closed."""

        def probed(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            key = next(self._ids)
            self._open[key] = (self.clock(), environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")[:200],
                               environ.get("QUERY_STRING", "")[:200])
            try:
                result = app(environ, start_response)
            except BaseException:
                self._finish(key)
                raise
            if isinstance(result, list | tuple):
                # The whole body is there: returned as it is, so the server still sets Content-Length from it.
                self._finish(key)
                return result
            return ClosingBody(result, lambda: self._finish(key))

        return probed

    def _finish(self, key: int) -> None:
        opened = self._open.pop(key, None)
        if opened is not None:
            self._finished.append((opened[0], self.clock(), *opened[1:]))

    @property
    def in_flight(self) -> int:
        return len(self._open)

    # --- figures -------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The figures as plain data (the file's content; a metrics endpoint can export the histogram)."""
        return {"interval_ms": self.settings.interval * 1000, "ticks": self.ticks,
                "lag_sum_ms": round(self.lag_sum * 1000, 1), "max_lag_ms": round(self.max_lag * 1000, 1),
                "buckets_ms": list(BUCKETS_MS), "counts": list(self.counts), "in_flight": self.in_flight,
                "stalls": [stall.as_dict() for stall in self.stalls], "pid": os.getpid(),
                "written_at": round(time.time(), 4)}

    def write(self, path: str, figures: str | None = None) -> None:
        """Replace `path` atomically with `figures` (JSON; the current ones by default): a reader never sees
        half a file."""
        target = Path(path)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(self.snapshot()) if figures is None else figures)
        os.replace(partial, target)

    def publish(self, path: str) -> None:
        """Write the figures file from a native thread; the loop does not wait for the disk.

        Replacing a file takes the file system's journal: on a busy disk (uploads being synced, a renderer's
        output) one rename took 10-22 ms here and longer on slower disks, and a probe that did that on the
        loop reported its own stalls. The figures are taken on the loop (they change there); one write is
        in flight at a time, a turn that finds one still going skips its write.
        """
        self._written_at = self.clock()
        if self._publishing:
            return
        self._publishing = True
        figures = json.dumps(self.snapshot())
        try:
            native.submit(self._write_in_thread, path, figures)
        except BaseException:
            self._publishing = False
            raise

    def _write_in_thread(self, path: str, figures: str) -> None:
        try:
            self.write(path, figures)
        except Exception:  # a full disk: the probe goes on, the next turn tries again
            log.exception("loop probe could not write %s", path)
        finally:
            self._publishing = False


class ClosingBody:
    """A streamed response body that calls `done` once when the server closes it (the request is over)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], object]) -> None:
        self._body = body
        self._done: Callable[[], object] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._done is not None:
                self._done()
                self._done = None


_running: LoopProbe | None = None


def running_probe() -> LoopProbe | None:
    """The probe of this server process, if `start_loop_probe` started one."""
    return _running


def start_loop_probe(app: Any, *, start_background_task: Callable[..., Any],
                     sleep: Callable[[float], object]) -> LoopProbe | None:
    """Wrap `app.wsgi_app` and start the probe's task when `CONFERENCE_LOOP_PROBE` is on (the default)."""
    global _running
    settings = ProbeSettings.from_config(app.config)
    if not settings.enabled:
        return None
    probe = LoopProbe(settings, describe=route_describer(app.url_map))
    from conference.core.metrics import loop_lag

    probe.observe = loop_lag
    app.wsgi_app = probe.middleware(app.wsgi_app)
    start_background_task(probe.run, sleep)
    _running = probe
    log.info("loop probe every %.0f ms; stalls from %.0f ms kept, from %.0f ms logged%s",
             settings.interval * 1000, settings.stall * 1000, settings.log * 1000,
             f"; figures in {settings.file}" if settings.file else "")
    return probe
