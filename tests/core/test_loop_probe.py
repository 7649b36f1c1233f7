"""The loop probe measures how long the event loop was held and names the request that held it.

The mechanism runs under the real event loops (eventlet and gevent, each in its own process with a real
WSGI server and real HTTP requests); the wiring runs in a real `conference run`, stalled from outside with
SIGSTOP while a long-polling request is in flight.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from conference.core.loop_probe import LoopProbe, ProbeSettings, start_loop_probe
from tests.support.server import PROJECT_ROOT, running_server

# A WSGI app behind the probe's middleware, served by the real server of the async mode. `/busy` computes
# for 300 ms of CPU time without yielding (the loop is held), `/green` waits 300 ms cooperatively (it is not),
# `/stream` computes between two parts of a streamed body (after the app has returned).
SERVER = r'''
import sys, time, warnings
warnings.filterwarnings("ignore")
mode, port_file, figures, stacks = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "stacks"
if mode == "eventlet":
    import eventlet, eventlet.wsgi
    eventlet.monkey_patch()
    sleep, spawn = eventlet.sleep, eventlet.spawn
else:
    import gevent, gevent.pywsgi
    from gevent import monkey
    monkey.patch_all()
    sleep, spawn = gevent.sleep, gevent.spawn
import os, socket
from conference.core.loop_probe import LoopProbe, ProbeSettings

def compute(seconds):  # CPU seconds of this thread: the same work however busy the machine is
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

def app(environ, start_response):
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/busy":
        compute(0.3)
        return [b"busy"]
    if path == "/green":
        sleep(0.3)
        return [b"green"]
    if path == "/stream":
        def body():
            yield b"a" * 100
            compute(0.3)
            yield b"b"
        return body()
    return [b"ok"]

probe = LoopProbe(ProbeSettings(interval=0.005, stall=0.05, log=10, file=figures, stacks=stacks))
probe.write(figures)
spawn(probe.run, sleep)
listener = socket.socket()  # a green socket: the standard library is patched
listener.bind(("127.0.0.1", 0))
listener.listen(50)
with open(port_file + ".tmp", "w") as handle:
    handle.write(str(listener.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
if mode == "eventlet":
    eventlet.wsgi.server(listener, probe.middleware(app), log_output=False)
else:
    gevent.pywsgi.WSGIServer(listener, probe.middleware(app), log=None).serve_forever()
'''


@contextmanager
def probed_server(tmp_path: Path, mode: str, *, stacks: bool = False) -> Iterator[tuple[str, Path, int]]:
    script = tmp_path / "probed_server.py"
    script.write_text(SERVER)
    port_file, figures = tmp_path / "port", tmp_path / "figures.json"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    output = tmp_path / "probed_server.log"
    with output.open("wb") as log:
        process = subprocess.Popen([sys.executable, str(script), mode, str(port_file), str(figures),
                                    "stacks" if stacks else "-"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the probed server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}", figures, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def figures_after(figures: Path, moment: float, timeout: float = 5) -> dict[str, Any]:
    """The probe's figures as written after `moment` (wall clock)."""
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = json.loads(figures.read_text())
        if data["written_at"] > moment:
            return data
        assert time.monotonic() < deadline, "the probe stopped writing its figures"
        time.sleep(0.05)


def get(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return response.read(), dict(response.headers)


@pytest.mark.server
@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_a_request_that_computes_without_yielding_is_named_as_the_stall(tmp_path: Path, mode: str) -> None:
    with probed_server(tmp_path, mode) as (url, figures, _pid):
        get(f"{url}/")
        started = time.time()
        body, headers = get(f"{url}/green")
        assert body == b"green"
        # A whole body is handed back as it is, so the server still announces its length.
        assert headers.get("Content-Length") == "5", headers
        quiet = figures_after(figures, time.time() + 0.1)
        assert [s for s in quiet["stalls"] if s["at"] > started] == []  # waiting cooperatively holds nothing

        started = time.time()
        assert get(f"{url}/busy")[0] == b"busy"
        held = figures_after(figures, time.time() + 0.1)
        stalls = [s for s in held["stalls"] if s["at"] > started]

    assert len(stalls) == 1, stalls
    assert stalls[0]["cpu_ms"] >= 290, stalls  # the loop's thread computed: not a host that stood still
    # The loop was held at least as long as it computed, and the CPU time fits into the measured window.
    assert stalls[0]["cpu_ms"] - 10 <= stalls[0]["lag_ms"], stalls
    # Computing and waiting for a CPU both fit into the window the probe slept through (lag + 5 ms).
    assert stalls[0]["wait_ms"] >= 0 and stalls[0]["cpu_ms"] + stalls[0]["wait_ms"] <= stalls[0]["lag_ms"] + 15
    assert stalls[0]["requests"] == ["GET /busy"]  # noticed after the request had finished, still named
    assert held["max_lag_ms"] == stalls[0]["lag_ms"]
    assert held["ticks"] == sum(held["counts"])
    above_200 = sum(count for bound, count in zip([*held["buckets_ms"], None], held["counts"], strict=True)
                    if bound is None or bound > 200)
    assert above_200 == 1


@pytest.mark.server
@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_with_stacks_sampled_a_stall_names_the_code_that_held_the_loop(tmp_path: Path, mode: str) -> None:
    """A websocket is one long request, so the request alone often cannot say what held the loop: the
    sampled stack can. The innermost project frame (the probe's middleware here) and the function below it."""
    with probed_server(tmp_path, mode, stacks=True) as (url, figures, _pid):
        get(f"{url}/")
        started = time.time()
        assert get(f"{url}/busy")[0] == b"busy"
        get(f"{url}/green")  # waits cooperatively: no stall, and no samples of its own in one
        stalls = [s for s in figures_after(figures, time.time() + 0.1)["stalls"] if s["at"] > started]

    assert len(stalls) == 1, stalls
    where, share = stalls[0]["code"][0].rsplit(" (", 1)
    assert where.startswith("conference/core/loop_probe.py:") and where.endswith("probed_server.py compute"), where
    assert int(share.split()[0]) >= 80, stalls  # nearly every sample of those 300 ms


@pytest.mark.server
@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_a_streamed_body_stays_in_flight_until_the_server_closes_it(tmp_path: Path, mode: str) -> None:
    with probed_server(tmp_path, mode) as (url, figures, _pid):
        get(f"{url}/")
        started = time.time()
        assert get(f"{url}/stream")[0] == b"a" * 100 + b"b"
        stalls = [s for s in figures_after(figures, time.time() + 0.1)["stalls"] if s["at"] > started]

    assert [s["requests"] for s in stalls] == [["GET /stream"]], stalls
    assert stalls[0]["cpu_ms"] >= 290, stalls


@pytest.mark.server
def test_time_spent_waiting_for_a_cpu_is_told_apart_from_time_the_loop_was_held(tmp_path: Path) -> None:
    """A busy host is not the server's doing: with the server in the idle scheduling class on one CPU beside a
    process that computes, the probe wakes late, and the stall says the time went on waiting for a CPU."""
    with probed_server(tmp_path, "eventlet") as (url, figures, pid):
        get(f"{url}/")
        cpu = min(os.sched_getaffinity(pid))
        os.sched_setaffinity(pid, {cpu})
        # SCHED_IDLE, not just nice 19: a nice task that sleeps between short turns gets the sleeper's credit
        # and is hardly delayed on a quiet machine; an idle-class task waits while the other one computes.
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        hog = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}}); "
                                                      "exec('while True: pass')"])
        try:
            started = time.time()
            time.sleep(1.0)
        finally:
            hog.kill()
            hog.wait(timeout=10)
        stalls = [s for s in figures_after(figures, time.time() + 0.1)["stalls"] if s["at"] > started]

    assert stalls, "the starved server's probe noticed nothing"
    worst = max(stalls, key=lambda s: s["lag_ms"])
    assert worst["lag_ms"] >= 50, stalls
    assert worst["wait_ms"] >= 0.6 * worst["lag_ms"], worst  # waiting for a CPU ...
    assert worst["cpu_ms"] <= 0.2 * worst["lag_ms"], worst  # ... not computing


@pytest.mark.server
@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_conference_run_names_the_requests_in_flight_when_the_loop_stood_still(tmp_path: Path, mode: str) -> None:
    figures = tmp_path / "loop.json"
    with running_server(tmp_path / "instance", mode, demo_attendees=None, CONFERENCE_LOOP_PROBE_FILE=str(figures),
                        CONFERENCE_LOOP_PROBE_STALL_MS="100") as server:
        with urllib.request.urlopen(f"{server.url}/socket.io/?EIO=4&transport=polling",  # noqa: S310
                                    timeout=10) as response:
            sid = json.loads(response.read().decode()[1:])["sid"]
        waiting = threading.Thread(target=_long_poll, args=(f"{server.url}/socket.io/?EIO=4&transport=polling"
                                                            f"&sid={sid}",), daemon=True)
        waiting.start()
        time.sleep(0.3)  # the long poll is in flight, waiting for a packet
        started = time.time()
        server.process.send_signal(signal.SIGSTOP)
        time.sleep(0.4)
        server.process.send_signal(signal.SIGCONT)
        data = figures_after(figures, time.time() + 0.1)
        log = server.log.read_text()

    stalls = [s for s in data["stalls"] if s["at"] > started]
    assert len(stalls) == 1, data["stalls"]
    assert 300 <= stalls[0]["lag_ms"] <= 5000, stalls
    assert stalls[0]["cpu_ms"] < 100, stalls  # the process was stopped, not computing
    assert stalls[0]["lag_ms"] - stalls[0]["wait_ms"] >= 300, stalls  # ... nor waiting for a CPU: held
    assert "GET /socket.io/ (polling)" in stalls[0]["requests"], stalls
    assert data["pid"] == server.process.pid
    assert "event loop held for" in log and "GET /socket.io/ (polling)" in log  # stalls over 100 ms are logged


def _long_poll(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            response.read()
    except OSError:
        pass  # the server stops at the end of the test


class _Enough(Exception):
    pass


def test_a_pause_while_the_probe_writes_its_figures_is_still_a_late_wake_up(tmp_path: Path) -> None:
    """The process can be stopped (or starved) at any instant, also between two sleeps while the probe records
    and writes its file: the next wake-up is measured from the last one, so that pause is not lost."""
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        if len(sleeps) == 4:
            raise _Enough
        sleeps.append(seconds)
        now[0] += seconds

    probe = LoopProbe(ProbeSettings(interval=0.01, stall=0.05, log=10, file=str(tmp_path / "loop.json")),
                      clock=lambda: now[0], scheduler=lambda: (0.0, 0.0))
    publish = probe.publish

    def publish_then_stopped(path: str) -> None:
        publish(path)
        if len(sleeps) == 1:
            now[0] += 0.4  # SIGSTOP lands right after the figures were handed over, before the next sleep

    probe.publish = publish_then_stopped  # type: ignore[method-assign]
    with pytest.raises(_Enough):
        probe.run(sleep)

    assert probe.ticks == 4
    assert [round(stall.lag_ms) for stall in probe.stalls] == [400]


def test_the_figures_file_is_written_by_another_thread_one_write_at_a_time(tmp_path: Path) -> None:
    """Replacing a file can wait for the disk's journal: the loop hands the figures over and goes on."""
    target = tmp_path / "loop.json"
    probe = LoopProbe(ProbeSettings(interval=0.01, stall=0.05, log=10, file=str(target)))
    probe.record(100.0, 100.2)  # one stall of 190 ms
    release = threading.Event()
    writers: list[int] = []
    write = probe.write

    def slow_write(path: str, figures: str | None = None) -> None:
        writers.append(threading.get_ident())
        release.wait(10)
        write(path, figures)

    probe.write = slow_write  # type: ignore[method-assign]
    probe.publish(str(target))
    probe.publish(str(target))  # the first is still writing: this turn skips its write
    release.set()
    deadline = time.monotonic() + 10
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)

    assert writers and threading.get_ident() not in writers
    assert len(writers) == 1
    assert [round(stall["lag_ms"]) for stall in json.loads(target.read_text())["stalls"]] == [190]


def test_settings_are_parsed_once_and_refuse_nonsense() -> None:
    settings = ProbeSettings.from_config({"LOOP_PROBE": "1", "LOOP_PROBE_INTERVAL_MS": "5",
                                          "LOOP_PROBE_STALL_MS": "30", "LOOP_PROBE_FILE": "/tmp/x.json"})
    assert settings == ProbeSettings(enabled=True, interval=0.005, stall=0.03, log=0.1, file="/tmp/x.json")
    assert ProbeSettings.from_config({}).enabled is True
    assert ProbeSettings.from_config({"LOOP_PROBE": "off"}).enabled is False
    with pytest.raises(ValueError, match="LOOP_PROBE"):
        ProbeSettings.from_config({"LOOP_PROBE": "maybe"})
    with pytest.raises(ValueError, match="INTERVAL"):
        ProbeSettings.from_config({"LOOP_PROBE_INTERVAL_MS": "0"})


def test_switched_off_the_probe_starts_nothing_and_leaves_the_app_alone(app: Flask) -> None:
    started: list[Any] = []
    wsgi_app = app.wsgi_app
    app.config["LOOP_PROBE"] = "0"
    assert start_loop_probe(app, start_background_task=lambda *args: started.append(args), sleep=time.sleep) is None
    assert started == [] and app.wsgi_app is wsgi_app

    app.config["LOOP_PROBE"] = "1"
    probe = start_loop_probe(app, start_background_task=lambda *args: started.append(args), sleep=time.sleep)
    assert isinstance(probe, LoopProbe)
    assert started == [(probe.run, time.sleep)]
    response = app.test_client().get("/events/nosuch/calendar/secret-token.ics")
    assert response.status_code == 404
    assert probe.in_flight == 1  # a streamed body: in flight until the server closes it
    response.close()
    assert probe.in_flight == 0
    # Requests are named by their URL rule: neither ids nor the feed's secret token reach a log line.
    assert probe.requests_during(0, time.monotonic()) == ("GET /events/<slug>/calendar/<token>.ics",)


def test_a_stall_names_the_newest_requests_in_flight_among_thousands_of_open_websockets() -> None:
    """Every websocket is one request for its whole life; a stall names the most recently started requests
    (open or finished within the stall) and counts the rest, without going through all of them."""
    now = [0.0]
    probe = LoopProbe(ProbeSettings(interval=0.01, stall=0.05, log=10), clock=lambda: now[0])

    def streamed(environ: dict[str, Any], start_response: Any) -> Any:
        return iter([b""])  # a generator-like body: in flight until closed

    app = probe.middleware(streamed)
    bodies = []
    for i in range(5_000):  # websockets opened at t = 0 .. 4.999
        now[0] = i / 1000
        bodies.append(app({"REQUEST_METHOD": "GET", "PATH_INFO": f"/ws/{i}", "QUERY_STRING": ""},
                          lambda *a: None))
    now[0] = 6.0
    finished = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/agenda", "QUERY_STRING": ""}, lambda *a: None)
    now[0] = 6.5
    finished.close()  # started 6.0, ended 6.5: in flight during a stall from 6.4 to 7.0
    now[0] = 8.0
    late = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/later", "QUERY_STRING": ""}, lambda *a: None)  # after it

    named = probe.requests_during(6.4, 7.0)
    assert named[0] == "GET /agenda"
    assert named[1:8] == tuple(f"GET /ws/{i}" for i in range(4999, 4992, -1))
    assert named[8] == "and 4993 more"  # 5,000 websockets + the agenda page - the 8 named
    assert len(named) == 9
    # Before any websocket opened, nothing was in flight; once they all closed, nothing is.
    assert probe.requests_during(-2.0, -1.0) == ()
    for body in [*bodies, late]:
        body.close()
    assert probe.in_flight == 0
