"""Production serving: with the rest of `conference.serving`, the only modules that know eventlet and gevent.

`prepare_async` must run before Flask, SQLAlchemy or the database driver are imported, so that
sockets, locks and the PostgreSQL driver cooperate with the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from conference.core.loop_probe import start_loop_probe
from conference.serving.direct_writes import DirectLine, direct_websocket_broadcasts
from conference.serving.heap import HeapKeeper, heap_keeping_allowed, keep_heap
from conference.serving.limits import close_on_refused_packets, limit_polling_bodies, limit_websocket_messages
from conference.serving.unmasking import faster_websocket_unmasking
from conference.serving.writer import install_whole_frames

log = logging.getLogger("conference.serving")

MAX_CONNECTIONS = 20_000  # eventlet's own default is 1,024 concurrent connections
DIRECT_WRITES_OFF = "direct websocket broadcasts: off (CONFERENCE_LIVE_DIRECT_WRITES=false)"


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


def eventlet_line_of(ws: Any) -> DirectLine | None:
    """The lock eventlet's websocket sends under (`_sendlock`, private: no public way to join its writer) and
    its sockets; None (that connection takes the Engine.IO queue) when eventlet keeps them elsewhere."""
    lock, green = getattr(ws, "_sendlock", None), getattr(ws, "socket", None)
    os_socket = getattr(green, "fd", None)
    return None if lock is None or os_socket is None else DirectLine(lock, os_socket, green)


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
    from conference.serving.room_index import index_rooms
    from conference.settings import get_settings

    configure_logging(app.config)
    settings = get_settings(app)
    mode = settings.async_mode
    install(app)  # several workers: the Redis queue manager (JSON, quick reconnects, catch-up, signal relay)
    index_rooms(socketio.server.manager)  # a disconnect leaves the client's rooms without testing every room
    # the one writer first: the message limits wrap simple-websocket functions whose writes it checks
    line_of = install_whole_frames() if mode == "gevent" else None
    limit_websocket_messages(socketio.server.eio, mode)
    close_on_refused_packets(socketio.server, JsonPacket.Refused)
    app.wsgi_app = limit_polling_bodies(app.wsgi_app, socketio.server.eio,  # type: ignore[method-assign]
                                        headers=BASELINE_HEADERS)
    # A client that stops reading (or sending) in the middle of a request or response, or an idle keep-alive
    # connection, is dropped after this long instead of holding its task and buffers for ever. 0: never.
    timeout = settings.socket_timeout or None
    interval = settings.heap_freeze_interval  # 0: CPython's own collection schedule
    if interval > 0 and heap_keeping_allowed():
        keeper = HeapKeeper(reclaim_every=settings.heap_reclaim_every, is_idle=lambda: server_is_idle(app))
        keeper.tend()  # the start-up heap: collected once, then frozen
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
    from conference.core.jobs import start_job_runner

    start_job_runner(app, socketio.start_background_task)  # previews and other background work (core.jobs)
    from conference.attendance.collector import start_collector

    start_collector(app, socketio.start_background_task, socketio.sleep)  # presence minutes, once a minute
    log.info("serving on http://%s:%s with %s", host, port, mode)
    if mode == "eventlet":
        import eventlet
        import eventlet.wsgi

        if settings.live_direct_writes:
            direct_websocket_broadcasts(
                socketio.server, eventlet_line_of, eventlet.spawn)
        else:
            log.warning(DIRECT_WRITES_OFF)
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

        if line_of is None:  # frames could be cut: long-polling only
            socketio.server.eio.transports = ["polling"]
            socketio.server.eio.allow_upgrades = False
        elif settings.live_direct_writes:
            direct_websocket_broadcasts(socketio.server, line_of, gevent.spawn)
        else:
            log.warning(DIRECT_WRITES_OFF)

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
