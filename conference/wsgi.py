"""Production serving: the only module that knows eventlet and gevent.

`prepare_async` must run before Flask, SQLAlchemy or the database driver are imported, so that
sockets, locks and the PostgreSQL driver cooperate with the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

log = logging.getLogger("conference.wsgi")

MAX_CONNECTIONS = 20_000  # eventlet's own default is 1,024 concurrent connections


def prepare_async(mode: str, database_url: str = "") -> None:
    """Monkey-patch the standard library for `mode`, make psycopg2 cooperative, hand out native threads."""
    if mode == "eventlet":
        import eventlet

        eventlet.monkey_patch()
        from eventlet import tpool

        _faster_websocket_unmasking()

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


def unmask(data: bytes, mask: bytes, length: int | None = None, offset: int = 0) -> bytes:
    """XOR `data[:length]` with the 4-byte websocket `mask`, starting at mask position `offset`."""
    if length is None:
        length = len(data)
    if length <= 0:
        return b""
    key = bytes(mask[(offset + i) % 4] for i in range(4)) * (length // 4 + 1)
    return (int.from_bytes(data[:length], "big") ^ int.from_bytes(key[:length], "big")).to_bytes(length, "big")


def _faster_websocket_unmasking() -> None:
    """Eventlet unmasks every incoming websocket frame one byte at a time in Python (a bytes object per
    byte: ~0.1 ms for a chat message, ~40 ms for a 64 KB frame); the same XOR on whole integers is one C
    loop. Same results (tests/test_wsgi.py compares them)."""
    from eventlet import websocket

    websocket.RFC6455WebSocket._apply_mask = staticmethod(unmask)


def websocket_text_frame(text: str) -> bytes:
    """One unmasked, uncompressed, final text frame, as a server sends it (RFC 6455 5.2)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return bytes((0x81, 126)) + length.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + length.to_bytes(8, "big") + payload


class DirectLine:
    """What a direct write needs of one websocket: the lock its own writer sends under, the non-blocking OS
    socket, and the green socket (for a frame the OS socket took only part of)."""

    __slots__ = ("lock", "os_socket", "green_socket")

    def __init__(self, lock: Any, os_socket: Any, green_socket: Any) -> None:
        self.lock, self.os_socket, self.green_socket = lock, os_socket, green_socket


def _direct_websocket_broadcasts(socketio_server: Any, line_of: Any, spawn: Any) -> None:
    """Write a broadcast's websocket frame straight to each idle socket.

    python-socketio encodes a room broadcast once, then hands it to every recipient's Engine.IO queue; a
    writer task per connection wakes, encodes and frames it again (and compresses it for browsers) and
    writes it: about 40 us per recipient here, 0.2 s of the loop for one message to 5,000 people. This
    builds the frame once per packet and sends it to each recipient whose connection is idle: its queue
    empty and its send lock free (then nothing sent earlier is still on its way, so the order holds). A
    socket that takes only part of the frame keeps the lock until a green thread has sent the rest;
    anything else (polling, a busy or closing connection, binary data) takes the usual queue. Frames go
    out uncompressed, which permessage-deflate allows per message (RFC 7692 6). `line_of(ws)` gives the
    `DirectLine` of the async server's websocket object.
    """
    import engineio.socket

    original_handler = engineio.socket.Socket._websocket_handler

    def websocket_handler(self: Any, ws: Any) -> Any:
        self.direct_line = line_of(ws)
        try:
            return original_handler(self, ws)
        finally:
            self.direct_line = None

    engineio.socket.Socket._websocket_handler = websocket_handler

    def finish(line: DirectLine, rest: bytes) -> None:
        try:
            line.green_socket.sendall(rest)
        except OSError:
            pass  # the connection is gone; its own reader notices and closes it
        finally:
            line.lock.release()

    def write_directly(eio_sid: str, packet: Any) -> bool:
        socket_ = socketio_server.eio.sockets.get(eio_sid)
        if socket_ is None or packet.binary or socket_.closing or socket_.closed or socket_.upgrading:
            return False
        line = getattr(socket_, "direct_line", None)
        if line is None or socket_.queue.qsize() or not line.lock.acquire(blocking=False):
            return False
        frame = getattr(packet, "websocket_frame", None)
        if frame is None:
            frame = packet.websocket_frame = websocket_text_frame(packet.encode())
        try:
            sent = line.os_socket.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            line.lock.release()
            return False
        if sent == len(frame):
            line.lock.release()
        else:
            spawn(finish, line, frame[sent:])
        return True

    original_send = socketio_server._send_eio_packet

    def send_eio_packet(eio_sid: str, packet: Any) -> None:
        if not write_directly(eio_sid, packet):
            original_send(eio_sid, packet)

    socketio_server._send_eio_packet = send_eio_packet


def _whole_websocket_frames() -> Any:
    """Under gevent, send every websocket frame whole, under a lock; returns `line_of` for direct writes.

    simple-websocket (gevent mode's websocket) writes a frame with one `socket.send`, which sends only what
    fits into the socket buffer: to a slow reader, the rest of a large frame (a grouped chat frame of a busy
    room) was lost and the stream corrupt from there on (tests/live/test_direct_writes.py). `sendall` waits;
    the lock keeps a direct write (see `_direct_websocket_broadcasts`) from cutting into it.
    """
    import gevent.lock
    import simple_websocket.ws
    from simple_websocket.errors import ConnectionClosed
    from wsproto.events import Message, TextMessage

    def send_lock(connection: Any) -> Any:
        lock = connection.__dict__.get("conference_send_lock")
        if lock is None:
            lock = connection.conference_send_lock = gevent.lock.Semaphore()
        return lock

    def send(self: Any, data: Any) -> None:
        if not self.connected:
            raise ConnectionClosed(self.close_reason, self.close_message)
        event = Message(data=data) if isinstance(data, bytes) else TextMessage(data=str(data))
        with send_lock(self):
            self.sock.sendall(self.ws.send(event))

    simple_websocket.ws.Base.send = send

    def line_of(wrapper: Any) -> DirectLine | None:
        connection = getattr(wrapper, "ws", None)  # engineio's wrapper around the simple-websocket server
        sock = getattr(connection, "sock", None)
        os_socket = getattr(sock, "_sock", None)
        if os_socket is None:
            return None
        return DirectLine(send_lock(connection), os_socket, sock)

    return line_of


def _settle_garbage_collector() -> None:
    """Keep the objects of start-up (modules, app, mappers: most of the heap) out of every later collection.

    A full collection walks every tracked object; with the whole application in the heap that is a pause of
    tens of milliseconds on the one event-loop thread, felt by every connection (chat p99). Objects frozen
    here are never collected, which is right for what lives as long as the process anyway.
    """
    import gc

    gc.collect()
    gc.freeze()


def fair_turns(app: Any, sleep: Any) -> Any:
    """Yield to the event loop before each request.

    A green thread that finds the next keep-alive request already in its socket buffer reads it without
    blocking, so it never gives the loop a turn: a few busy connections are served back to back while the
    others wait for up to a second (p50 4 ms, p99 over 1 s at 16 clients). One `sleep(0)` per request puts
    each connection at the back of the queue, like a new one.
    """

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
        sleep(0)
        return app(environ, start_response)

    return wsgi_app


def serve(app: Any, *, host: str, port: int, listener: socket.socket | None = None) -> None:
    """Serve `app` with its configured async server until interrupted."""
    from conference.extensions import socketio
    from conference.live.relay import install

    mode = app.config["ASYNC_MODE"]
    install(app)  # several workers: the Redis queue manager (JSON, quick reconnects, catch-up, signal relay)
    _settle_garbage_collector()
    log.info("serving on http://%s:%s with %s", host, port, mode)
    if mode == "eventlet":
        import eventlet
        import eventlet.wsgi

        if app.config.get("LIVE_DIRECT_WRITES", True):
            _direct_websocket_broadcasts(
                socketio.server, lambda ws: DirectLine(ws._sendlock, ws.socket.fd, ws.socket), eventlet.spawn)
        sock = listener or eventlet.listen((host, port), backlog=2048)
        with contextlib.suppress(OSError):  # not a TCP socket (e.g. a Unix socket)
            # Accepted connections inherit it (Linux): without it a response written in two parts waits for
            # the client's delayed ACK, ~40 ms per request for pages over a few kilobytes.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        eventlet.wsgi.server(sock, fair_turns(app, eventlet.sleep), max_size=MAX_CONNECTIONS, log_output=False,
                             debug=False, keepalive=True, socket_timeout=None)
    elif mode == "gevent":
        import gevent
        from gevent.pywsgi import WSGIHandler, WSGIServer

        line_of = _whole_websocket_frames()
        if app.config.get("LIVE_DIRECT_WRITES", True):
            _direct_websocket_broadcasts(socketio.server, line_of, gevent.spawn)

        class NoDelayHandler(WSGIHandler):
            """gevent's pywsgi leaves Nagle on, which stalls keep-alive responses by ~40 ms."""

            def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
                with contextlib.suppress(OSError):  # not a TCP socket (e.g. a Unix socket)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                super().__init__(sock, address, server, rfile)

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
                start(worker_port)
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0
