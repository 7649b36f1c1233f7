"""Websocket reading and writing beside the libraries' own code, and the limits on what a client may send.

Patches of library internals:
- eventlet unmasks incoming frames byte by byte: `unmask` does it as one integer XOR;
- a room broadcast is framed once and written straight to every idle websocket (`direct_websocket_broadcasts`)
  instead of passing each connection's Engine.IO queue and writer task;
- under gevent, simple-websocket's frames are sent whole, under a lock (`whole_websocket_frames`);
- a websocket message (all its fragments together) over the limit closes the connection, under both servers
  (`limit_websocket_messages`); where the libraries are not as expected, websockets are turned off instead.

Limits that use only public interfaces: a Socket.IO packet with binary data closes its connection
(`close_on_refused_packets`); a long-polling POST body over the limit is refused before it is read
(`limit_polling_bodies`).

Each has a test that fails if the library changes under it: tests/test_websocket_io.py compares the unmasking with
eventlet's own and checks the start-up probes of the message limits; tests/live/test_direct_writes.py checks order
and completeness for a fast and a stalled reader under both servers; tests/security/test_ws_limits.py attacks a
real server under both. `conference.wsgi` applies them when it serves.
"""

from __future__ import annotations

import inspect
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from types import CodeType, SimpleNamespace
from typing import Any

log = logging.getLogger("conference.websocket_io")


def unmask(data: bytes, mask: bytes, length: int | None = None, offset: int = 0) -> bytes:
    """XOR `data[:length]` with the 4-byte websocket `mask`, starting at mask position `offset`."""
    if length is None:
        length = len(data)
    if length <= 0:
        return b""
    key = bytes(mask[(offset + i) % 4] for i in range(4)) * (length // 4 + 1)
    return (int.from_bytes(data[:length], "big") ^ int.from_bytes(key[:length], "big")).to_bytes(length, "big")


def faster_websocket_unmasking() -> None:
    """Eventlet unmasks every incoming websocket frame one byte at a time in Python (a bytes object per
    byte: ~0.1 ms for a chat message, ~40 ms for a 64 KB frame); the same XOR on whole integers is one C
    loop. Same results (tests/test_websocket_io.py compares them)."""
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


def direct_websocket_broadcasts(socketio_server: Any, line_of: Any, spawn: Any) -> None:
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


def whole_websocket_frames() -> Any:
    """Under gevent, send every websocket frame whole, under a lock; returns `line_of` for direct writes.

    simple-websocket (gevent mode's websocket) writes a frame with one `socket.send`, which sends only what
    fits into the socket buffer: to a slow reader, the rest of a large frame (a grouped chat frame of a busy
    room) was lost and the stream corrupt from there on (tests/live/test_direct_writes.py). `sendall` waits;
    the lock keeps a direct write (see `direct_websocket_broadcasts`) from cutting into it.
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


# --- limits ---------------------------------------------------------------------------------------------------


def _eventlet_message_limit(eio_server: Any) -> bool:
    """eventlet checks the length of each frame, not of the message: a text frame without FIN followed by
    continuation frames under the limit was kept in memory without end (1,000 MB sent: +1,000 MB RSS). Each
    message now collects into one buffer that refuses to grow past the limit (close code 1009), and the
    pre-RFC 6455 handshakes are refused (their framing has no length: eventlet buffered until a 0xFF byte)."""
    from engineio.async_drivers import eventlet as driver
    from eventlet import websocket

    original_message, failed = websocket.RFC6455WebSocket.Message, websocket.FailedConnectionError
    original_wsgi = eio_server._async["websocket"]
    if not issubclass(original_wsgi, driver.WebSocketWSGI):
        return False

    class LimitedMessage(original_message):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # `getvalue` joins `data`: one growing buffer instead of a part per chunk (a flood of one-byte
            # fragments would cost ~40 bytes of objects per byte received)
            self.buffer = bytearray()
            self.data = [self.buffer]

        def push(self, data: bytes, final: bool = False) -> None:
            if len(self.buffer) + len(data) > self.max_frame_length:
                raise failed(1009, "Message too big")
            self.buffer += data
            self.finished = final

    class LimitedWebSocketWSGI(original_wsgi):  # type: ignore[misc, valid-type]
        def __init__(self, handler: Any, server: Any) -> None:
            super().__init__(handler, server)
            self.support_legacy_versions = False

    probe = LimitedMessage(2, 8)
    probe.push(b"abc")
    probe.push(b"")
    probe.push(b"de", final=True)
    try:
        probe.push(b"xyzw")
    except failed as error:
        refused = error.status == 1009
    else:
        refused = False
    wsgi_probe = LimitedWebSocketWSGI(lambda ws: None, SimpleNamespace(max_http_buffer_size=8))
    if not (refused and probe.finished and probe.getvalue() == b"abcde" and wsgi_probe.max_frame_length == 8
            and wsgi_probe.support_legacy_versions is False):
        return False
    websocket.RFC6455WebSocket.Message = LimitedMessage
    eio_server._async["websocket"] = LimitedWebSocketWSGI
    return True


def _simple_websocket_message_limit(eio_server: Any, *, bounded_input: bool) -> bool:
    """simple-websocket (the websocket of gevent and of the development server) has a message limit, but
    Engine.IO does not pass one: an unfinished fragmented message grew without end (300 MB sent: +300 MB RSS).
    Engine.IO's limit is passed on, and the websocket's socket gets Engine.IO's ping-cycle timeout as under
    eventlet (Engine.IO sets it on an attribute `_sock`), not the HTTP socket timeout. `bounded_input`: also
    bound the queue of received messages (gevent; see `_bounded_gevent_input`)."""
    import simple_websocket
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI

    original_wsgi = eio_server._async["websocket"]
    if not (isinstance(original_wsgi, type) and issubclass(original_wsgi, SimpleWebSocketWSGI)):
        return False  # e.g. gevent-websocket installed: Engine.IO then uses that instead
    if "max_message_size" not in inspect.signature(simple_websocket.Server).parameters:
        return False

    class LimitedWebSocketWSGI(original_wsgi):  # type: ignore[misc, valid-type]
        def __init__(self, handler: Any, server: Any) -> None:
            super().__init__(handler, server)
            self.server_args["max_message_size"] = int(server.max_http_buffer_size)

        @property
        def _sock(self) -> Any:
            return self.ws.sock

    probe = LimitedWebSocketWSGI(lambda ws: None, SimpleNamespace(max_http_buffer_size=8))
    if probe.server_args.get("max_message_size") != 8 or (bounded_input and not _bounded_gevent_input()):
        return False
    eio_server._async["websocket"] = LimitedWebSocketWSGI
    return True


QUEUED_MESSAGES = 100  # at most this many received messages wait for Engine.IO, and at most one limit's bytes


def _bounded_gevent_input() -> bool:
    """simple-websocket's reading task queues every complete message for Engine.IO's reader, without bound:
    messages under the limit, sent faster than they are handled (or after the connection was refused), piled
    up (12 MB sent after a refused packet: +12 MB RSS). The reading task now waits while the queue is full,
    so TCP holds back the sender, as eventlet's reader (which reads a message only when asked) does."""
    import gevent.event
    from simple_websocket.ws import Base

    if not ({"input_buffer", "connected", "max_message_size"} <= set(Base.__init__.__code__.co_names)
            and "input_buffer" in Base._handle_events.__code__.co_names
            and "input_buffer" in Base.receive.__code__.co_names
            and "connected" in Base.close.__code__.co_names):
        return False
    handle_events, receive, close = Base._handle_events, Base.receive, Base.close

    def full(connection: Any) -> bool:
        queued = connection.input_buffer
        return len(queued) >= QUEUED_MESSAGES or sum(map(len, queued)) > (connection.max_message_size or 0)

    def bounded_handle_events(self: Any) -> bool:
        keep_going = handle_events(self)
        waited = False
        while keep_going and self.connected and full(self):
            drained = self.__dict__.get("conference_drained")
            if drained is None:
                drained = self.conference_drained = gevent.event.Event()
            drained.clear()
            drained.wait(timeout=1.0)
            waited = True
        # The caller stores the result in `connected`: a close while waiting must stay a close (during the
        # handshake `connected` is still False, and no wait happens).
        return bool(keep_going and (self.connected or not waited))

    def wake(connection: Any) -> None:
        drained = connection.__dict__.get("conference_drained")
        if drained is not None:
            drained.set()

    def signalling_receive(self: Any, timeout: float | None = None) -> Any:
        try:
            return receive(self, timeout)
        finally:
            wake(self)

    def signalling_close(self: Any, reason: Any = None, message: Any = None) -> Any:
        try:
            return close(self, reason, message)
        finally:
            wake(self)  # a reading task waiting for room ends now, not at its next look

    Base._handle_events = bounded_handle_events
    Base.receive = signalling_receive
    Base.close = signalling_close
    return True


def limit_websocket_messages(eio_server: Any, mode: str) -> bool:
    """Close a websocket once a message passes Engine.IO's `max_http_buffer_size`, counting all its fragments.

    Checked at start-up against the installed libraries (names and a probe). If the check fails, websockets
    are turned off with one error in the log: clients fall back to long-polling, whose bodies are limited
    (`limit_polling_bodies`). Returns whether websockets stay on.
    """
    try:
        if mode == "eventlet":
            installed = _eventlet_message_limit(eio_server)
        else:  # gevent, and the development server's threads
            installed = _simple_websocket_message_limit(eio_server, bounded_input=mode == "gevent")
    except (ImportError, AttributeError, KeyError, TypeError, ValueError) as error:
        log.debug("websocket message limit probe: %r", error)
        installed = False
    if not installed:
        log.error("websocket message limit could not be installed for %s (library changed?): serving Socket.IO "
                  "over long-polling only", mode)
        eio_server.transports = ["polling"]
        eio_server.allow_upgrades = False
    return installed


def end_engineio_session(eio_server: Any, eio_sid: str | None) -> None:
    """Close an Engine.IO session without waiting for its queue to drain (Engine.IO's own `disconnect`
    waits for a long-polling client to fetch the CLOSE packet: a request refused that way never returns)."""
    socket_ = eio_server.sockets.get(eio_sid) if eio_sid else None
    if socket_ is not None:
        socket_.close(wait=False, abort=False)


def _names_used(code: CodeType) -> set[str]:
    """The attribute and global names a function's code (with its nested functions) uses."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _names_used(constant)
    return names


def close_on_refused_packets(socketio_server: Any, refused: type[Exception]) -> None:
    """Close the connection of a client whose packet the packet class refuses (`refused`: binary data), and
    give the other tasks a turn before each message a client sends.

    The packet class refuses it first, so nothing is kept whatever the server; this closes the connection,
    instead of python-socketio's logging the error and reading on. Engine.IO's websocket reader also reads on
    after its session was closed, until its writer task has closed the socket; under eventlet a client that
    keeps sending kept the reader from ever yielding to that task (60 MB of refused frames were read in one
    go), so a closed session's reader now stops at the next message.
    """
    import engineio.socket

    eio = socketio_server.eio
    handle_message = eio.handlers["message"]
    websocket_handler = engineio.socket.Socket._websocket_handler
    if "wait" in _names_used(websocket_handler.__code__):

        def stopping_websocket_handler(self: Any, ws: Any) -> Any:
            wait = ws.wait

            def wait_unless_closed() -> Any:
                return None if self.closing or self.closed else wait()

            ws.wait = wait_unless_closed
            return websocket_handler(self, ws)

        engineio.socket.Socket._websocket_handler = stopping_websocket_handler
    else:
        log.warning("Engine.IO's websocket reader is not as expected: a refused client is read on until its "
                    "connection closes")

    def guarded(eio_sid: str, data: Any) -> Any:
        # One turn for the others before each message: a reader that finds the next message already in its
        # buffer never blocks, so a client sending 2,000 events in one write held the loop for 470 ms (the
        # same reason as `wsgi.fair_turns` for keep-alive requests). A switch costs a few microseconds.
        eio.sleep(0)
        try:
            return handle_message(eio_sid, data)
        except refused as error:
            log.info("closing Socket.IO connection %s: %s", eio_sid, error)
            end_engineio_session(eio, eio_sid)
            return None

    eio.on("message", guarded)


def limit_polling_bodies(wsgi_app: Callable[..., Iterable[bytes]], eio_server: Any, *,
                         headers: Iterable[tuple[str, str]] = (),
                         path: str = "/socket.io/") -> Callable[..., Iterable[bytes]]:
    """Refuse a long-polling POST over Engine.IO's `max_http_buffer_size`, or without a length, unread, and
    end its session. The refusal carries `headers` besides its own.

    Engine.IO refuses it too, but then waits for the session's next GET before it answers: a client that
    sends none held the request (and its connection) forever.
    """
    extra_headers = list(headers)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith(path):
            length = environ.get("CONTENT_LENGTH") or ""
            if not length.isdigit() or int(length) > eio_server.max_http_buffer_size:
                sid = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("sid", [None])[0]
                end_engineio_session(eio_server, sid)
                status = "411 Length Required" if not length.isdigit() else "413 Content Too Large"
                start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close"),
                                        ("Cache-Control", "no-store"), *extra_headers])
                return [status.encode()]
        return wsgi_app(environ, start_response)

    return app
