"""A room broadcast framed once and written straight to every idle websocket.

Seam (private names): python-socketio's `Server._send_eio_packet` (where a packet leaves for one client) and
python-engineio's `Socket._websocket_handler` (where a connection's websocket is known), plus the socket's
`queue`, `closing`, `closed` and `upgrading`. Off (every packet through python-socketio's public path: each
connection's Engine.IO queue and writer task) when either library is outside the tested range, a name is
gone, or `CONFERENCE_LIVE_DIRECT_WRITES=false`. tests/live/test_direct_writes.py checks order and
completeness for a fast and a stalled reader under both servers, with the seam on and off.
"""

from __future__ import annotations

from typing import Any

from conference.serving import fence

SEAM = "direct websocket broadcasts (python-socketio, python-engineio)"


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


def direct_websocket_broadcasts(socketio_server: Any, line_of: Any, spawn: Any) -> bool:
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

    if not fence.allows(SEAM, ("python-engineio", "python-socketio"),
                        ((engineio.socket.Socket, "_websocket_handler"), (socketio_server, "_send_eio_packet"),
                         (socketio_server, "eio")),
                        fallback="broadcasts go through each connection's Engine.IO queue"):
        return False
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
    return True


