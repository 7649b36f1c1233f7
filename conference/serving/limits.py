"""Limits on what a websocket or long-polling client may send, beside the libraries' own code.

- a websocket message (all its fragments together) over the limit closes the connection, under both servers
  (`limit_websocket_messages`); where the libraries are not as expected, websockets are turned off instead;
- a Socket.IO packet with binary data closes its connection (`close_on_refused_packets`, public interfaces
  but for the reader's stop after a close, which checks the names it needs);
- a long-polling POST body over the limit is refused before it is read (`limit_polling_bodies`, public).

tests/test_websocket_io.py checks the start-up probes of the message limits; tests/security/test_ws_limits.py
attacks a real server under both.
"""

from __future__ import annotations

import inspect
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from types import CodeType, SimpleNamespace
from typing import Any

from conference.serving import fence

log = logging.getLogger("conference.serving")
SEAM = "websocket message limits"


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
    libraries = ("eventlet", "python-engineio") if mode == "eventlet" else ("simple-websocket", "python-engineio")
    found = fence.problem(libraries)
    try:
        if found is not None:
            installed = False
        elif mode == "eventlet":
            installed = _eventlet_message_limit(eio_server)
        else:  # gevent, and the development server's threads
            installed = _simple_websocket_message_limit(eio_server, bounded_input=mode == "gevent")
    except (ImportError, AttributeError, KeyError, TypeError, ValueError) as error:
        log.debug("websocket message limit probe: %r", error)
        installed = False
    if not installed:
        fence.switched_off[SEAM] = found or "the libraries' names or behaviour changed"
        log.error("websocket message limit could not be installed for %s (%s): serving Socket.IO over "
                  "long-polling only", mode, found or "library changed?")
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
            try:
                return websocket_handler(self, ws)
            finally:
                del ws.wait  # the closure holds the bound `ws.wait`: a cycle through `ws` (core/heap.py)

        engineio.socket.Socket._websocket_handler = stopping_websocket_handler
    else:
        log.warning("Engine.IO's websocket reader is not as expected: a refused client is read on until its "
                    "connection closes")

    def guarded(eio_sid: str, data: Any) -> Any:
        # One turn for the others before each message: a reader that finds the next message already in its
        # buffer never blocks, so a client sending 2,000 events in one write held the loop for 470 ms (the
        # same reason as `server.fair_turns` for keep-alive requests). A switch costs a few microseconds.
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
