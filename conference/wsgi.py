"""Production serving: with `conference.websocket_io`, the only modules that know eventlet and gevent.

`prepare_async` must run before Flask, SQLAlchemy or the database driver are imported, so that
sockets, locks and the PostgreSQL driver cooperate with the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from conference.core.heap import HeapKeeper, keep_heap
from conference.core.loop_probe import start_loop_probe
from conference.websocket_io import (
    DirectLine,
    close_on_refused_packets,
    direct_websocket_broadcasts,
    faster_websocket_unmasking,
    limit_polling_bodies,
    limit_websocket_messages,
    whole_websocket_frames,
)

log = logging.getLogger("conference.wsgi")

MAX_CONNECTIONS = 20_000  # eventlet's own default is 1,024 concurrent connections


def prepare_async(mode: str, database_url: str = "") -> None:
    """Monkey-patch the standard library for `mode`, make psycopg2 cooperative, hand out native threads."""
    if mode == "eventlet":
        import eventlet

        eventlet.monkey_patch()
        from eventlet import tpool

        faster_websocket_unmasking()

        def submit(function: Any, *args: Any) -> Any:
            worker = eventlet.spawn(tpool.execute, function, *args)
            eventlet.sleep(0)  # hand the work over now, not when this green thread next blocks
            return worker.wait
    elif mode == "gevent":
        import gevent
        from gevent import monkey

        # By default every greenlet keeps its spawner and a copy of the spawning stack (for debugging): a few
        # KB per live connection (5,000 clients: 75 -> 70 KB each) and a stack walk per ping.
        gevent.config.track_greenlet_tree = False
        monkey.patch_all()

        def submit(function: Any, *args: Any) -> Any:
            return gevent.get_hub().threadpool.spawn(function, *args).get
    else:
        return
    from conference.core import native  # imported after patching, like everything else

    native.install(submit)
    if database_url.startswith("postgresql"):
        # psycopg2's wait callback makes its socket waits green (see config.cooperative_database_url).
        if mode == "eventlet":
            import psycogreen.eventlet

            psycogreen.eventlet.patch_psycopg()
        else:
            import psycogreen.gevent

            psycogreen.gevent.patch_psycopg()


def fair_turns(app: Any, sleep: Any) -> Any:
    """Yield to the event loop before each request.

    A green thread that finds the next keep-alive request already in its socket buffer reads it without
    blocking, so it never gives the loop a turn: a few busy connections are served back to back while the
    others wait for up to a second (p50 4 ms, p99 over 1 s at 16 clients). One `sleep(0)` per request puts
    each connection at the back of the queue, like a new one.
    """

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
        sleep(0)
        try:
            return app(environ, start_response)
        finally:
            # eventlet's `set_idle` closure refers to the connection, which refers to this environ: a cycle
            # per request, which outlives a websocket's connection once frozen (core/heap.py). Only eventlet's
            # WebSocketWSGI calls it, inside `app`.
            environ.pop("eventlet.set_idle", None)

    return wsgi_app


def server_is_idle(app: Any) -> bool:
    """No open socket and no HTTP request in flight: a pause of the loop now delays nobody."""
    from conference.core.loop_probe import running_probe
    from conference.live.broadcast import live_state

    probe = running_probe()
    return len(live_state(app).registry) == 0 and (probe is None or probe.in_flight == 0)


def serve(app: Any, *, host: str, port: int, listener: socket.socket | None = None) -> None:
    """Serve `app` with its configured async server until interrupted."""
    from conference.core.logs import configure_logging
    from conference.core.security import BASELINE_HEADERS
    from conference.extensions import socketio
    from conference.factory import JsonPacket
    from conference.live.relay import install

    configure_logging(app.config)
    mode = app.config["ASYNC_MODE"]
    install(app)  # several workers: the Redis queue manager (JSON, quick reconnects, catch-up, signal relay)
    limit_websocket_messages(socketio.server.eio, mode)
    close_on_refused_packets(socketio.server, JsonPacket.Refused)
    app.wsgi_app = limit_polling_bodies(app.wsgi_app, socketio.server.eio,  # type: ignore[method-assign]
                                        headers=BASELINE_HEADERS)
    # A client that stops reading (or sending) in the middle of a request or response, or an idle keep-alive
    # connection, is dropped after this long instead of holding its task and buffers for ever. 0: never.
    timeout = float(app.config["SOCKET_TIMEOUT"]) or None
    keeper = HeapKeeper(reclaim_every=float(app.config.get("HEAP_RECLAIM_EVERY", 600)),
                        is_idle=lambda: server_is_idle(app))
    keeper.tend()  # the start-up heap: collected once, then frozen
    interval = float(app.config.get("HEAP_FREEZE_INTERVAL", 1.0))
    if interval > 0:  # 0: CPython's own collection schedule over everything created after start-up
        socketio.start_background_task(keep_heap, keeper, interval=interval, sleep=socketio.sleep)
    start_loop_probe(app, start_background_task=socketio.start_background_task, sleep=socketio.sleep)
    from conference.core.metrics import timed_requests

    app.wsgi_app = timed_requests(app.wsgi_app)  # type: ignore[method-assign]
    from conference.core.mail_queue import start_mail_sender

    start_mail_sender(app, socketio.start_background_task)  # delivers the mail queue (with MAIL_SERVER only)
    from conference.mails.services import start_reminder_pass

    start_reminder_pass(app, socketio.start_background_task, socketio.sleep)  # reminders and slides notices
    from conference.live.retention import start_retention_pass

    start_retention_pass(app, socketio.start_background_task, socketio.sleep)  # each event's retention policy
    from conference.attendance.collector import start_collector

    start_collector(app, socketio.start_background_task, socketio.sleep)  # presence minutes, once a minute
    log.info("serving on http://%s:%s with %s", host, port, mode)
    if mode == "eventlet":
        import eventlet
        import eventlet.wsgi

        if app.config.get("LIVE_DIRECT_WRITES", True):
            direct_websocket_broadcasts(
                socketio.server, lambda ws: DirectLine(ws._sendlock, ws.socket.fd, ws.socket), eventlet.spawn)
        sock = listener or eventlet.listen((host, port), backlog=2048)
        with contextlib.suppress(OSError):  # not a TCP socket (e.g. a Unix socket)
            # Accepted connections inherit it (Linux): without it a response written in two parts waits for
            # the client's delayed ACK, ~40 ms per request for pages over a few kilobytes.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        eventlet.wsgi.server(sock, fair_turns(app, eventlet.sleep), max_size=MAX_CONNECTIONS, log_output=False,
                             debug=False, keepalive=True, socket_timeout=timeout)
    elif mode == "gevent":
        import gevent
        from gevent.pywsgi import WSGIHandler, WSGIServer

        line_of = whole_websocket_frames()
        if app.config.get("LIVE_DIRECT_WRITES", True):
            direct_websocket_broadcasts(socketio.server, line_of, gevent.spawn)

        class NoDelayHandler(WSGIHandler):
            """gevent's pywsgi leaves Nagle on, which stalls keep-alive responses by ~40 ms, and has no
            socket timeout of its own."""

            def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
                with contextlib.suppress(OSError):  # not a TCP socket (e.g. a Unix socket)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(timeout)
                super().__init__(sock, address, server, rfile)

            def handle_error(self, t: Any, v: Any, tb: Any) -> None:
                if isinstance(v, TimeoutError):  # the socket timeout: the client stopped; nothing to report
                    self.close_connection = True
                    return
                super().handle_error(t, v, tb)

        server = WSGIServer(listener or (host, port), fair_turns(app, gevent.sleep), handler_class=NoDelayHandler,
                            log=None, backlog=2048)
        server.serve_forever()
    else:
        socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, use_reloader=False,
                     log_output=False)


def supervise_workers(*, host: str, port: int, workers: int) -> int:
    """Run `workers` single-process servers on ports port..port+workers-1 and restart any that dies.

    The workers share state through the database and the Redis message queue; a reverse proxy in front
    spreads clients over the ports (see docs/deployment.md). Returns when interrupted (SIGTERM/SIGINT).
    """
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "conference.entry", "run", "--workers", "1", "--no-upgrade", "--host", host]
    processes: dict[int, subprocess.Popen[bytes]] = {}
    # One metrics directory for this run's workers, so that any of them answers /metrics for all (it must be
    # in the environment before prometheus-client is imported, hence set here for the children).
    import os
    import tempfile

    from conference.core.metrics import prepare_worker_directory, worker_exited

    metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="conference-metrics-"))
    prepare_worker_directory(metrics_dir)
    stopping = False

    def start(worker_port: int) -> None:
        processes[worker_port] = subprocess.Popen([*command, "--port", str(worker_port)])
        log.info("worker on port %s started (pid %s)", worker_port, processes[worker_port].pid)

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for offset in range(workers):
        start(port + offset)
    while not stopping:
        time.sleep(0.5)
        for worker_port, process in list(processes.items()):
            if process.poll() is not None and not stopping:
                log.warning("worker on port %s exited with %s; restarting", worker_port, process.returncode)
                worker_exited(process.pid)
                start(worker_port)
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0
