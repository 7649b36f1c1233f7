"""One writer per websocket under gevent: every frame simple-websocket writes (data, ping, pong, close and the
handshake answer) goes out whole, under one lock per connection, which the direct broadcast writes take too.

simple-websocket (gevent mode's websocket) writes a frame with one `socket.send`, which sends only what fits
into the socket buffer: to a slow reader, the rest of a large frame (a grouped chat frame of a busy room) was
lost and the stream corrupt from there on (tests/live/test_direct_writes.py). Its reading task also writes
(pings, pongs, the close answer) with `sock.send`, so those could cut into a half-sent frame.

Seam (private names): `simple_websocket.ws.Base` keeps its socket in the attribute `sock` and writes only
through `sock.send`; a class property `sock` wraps whatever socket `Base.__init__` stores in a `WholeFrames`
writer, so every one of those writes takes the lock and is sent whole (`sendall`). `Base.send` encodes under
the lock as well, so messages leave in the order wsproto compressed them (permessage-deflate keeps context
between messages). If simple-websocket is not the tested version or lacks these names, websockets are turned
off under gevent (long-polling only): a half-written frame must never go out.
"""

from __future__ import annotations

from typing import Any

from conference.serving import fence
from conference.serving.direct_writes import DirectLine

SEAM = "whole websocket frames (simple-websocket)"


class WholeFrames:
    """The socket simple-websocket sees: `send` writes everything, under the connection's writer lock."""

    __slots__ = ("raw", "lock")

    def __init__(self, raw: Any, lock: Any) -> None:
        self.raw, self.lock = raw, lock

    def send(self, data: bytes) -> int:
        with self.lock:
            self.raw.sendall(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def __getattr__(self, name: str) -> Any:  # recv, fileno (selectors), close, dup, _sock ...
        return getattr(self.raw, name)


def install_whole_frames(make_lock: Any | None = None) -> Any | None:
    """Install the one writer; returns `line_of` for direct writes, or None when the seam stays off."""
    try:
        import simple_websocket.ws
        from simple_websocket.errors import ConnectionClosed
        from wsproto.events import Message, TextMessage
    except ImportError as error:
        fence.off(SEAM, str(error), fallback="websockets off (long-polling only)")
        return None
    base = simple_websocket.ws.Base
    needed = ((base, "send"), (base, "close"), (base, "_thread"), (base, "_handle_events"))
    if not fence.allows(SEAM, ("simple-websocket",), needed, fallback="websockets off (long-polling only)"):
        return None
    if not all("sock" in function.__code__.co_names
               for function in (base.__init__, base.send, base.close, base._thread, base._handle_events)):
        fence.off(SEAM, "simple_websocket.ws.Base no longer writes through `sock`",
                  fallback="websockets off (long-polling only)")
        return None
    if make_lock is None:
        import gevent.lock

        make_lock = gevent.lock.Semaphore

    def get_sock(self: Any) -> Any:
        return self.__dict__.get("conference_writer")

    def set_sock(self: Any, raw: Any) -> None:
        self.__dict__["conference_writer"] = None if raw is None else WholeFrames(raw, make_lock())

    def send(self: Any, data: Any) -> None:
        if not self.connected:
            raise ConnectionClosed(self.close_reason, self.close_message)
        event = Message(data=data) if isinstance(data, bytes) else TextMessage(data=str(data))
        writer = self.sock
        with writer.lock:  # encoded under the lock: frames leave in the order they were compressed
            writer.raw.sendall(self.ws.send(event))

    base.sock = property(get_sock, set_sock)
    base.send = send

    def line_of(wrapper: Any) -> DirectLine | None:
        connection = getattr(wrapper, "ws", None)  # engineio's wrapper around the simple-websocket server
        writer = getattr(connection, "sock", None)
        os_socket = getattr(getattr(writer, "raw", None), "_sock", None)
        if not isinstance(writer, WholeFrames) or os_socket is None:
            return None
        return DirectLine(writer.lock, os_socket, writer.raw)

    return line_of
