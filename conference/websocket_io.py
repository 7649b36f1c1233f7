"""Websocket reading and writing beside the libraries' own code: the three patches of library internals.

- eventlet unmasks incoming frames byte by byte: `unmask` does it as one integer XOR;
- a room broadcast is framed once and written straight to every idle websocket (`direct_websocket_broadcasts`)
  instead of passing each connection's Engine.IO queue and writer task;
- under gevent, simple-websocket's frames are sent whole, under a lock (`whole_websocket_frames`).

Each has a test that fails if the library changes under it: tests/test_websocket_io.py compares the unmasking with
eventlet's own; tests/live/test_direct_writes.py checks order and completeness for a fast and a stalled reader
under both servers. `conference.wsgi` applies them when it serves.
"""

from __future__ import annotations

from typing import Any


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
