"""Raw clients for the resource battery: requests a browser would never send, on blocking sockets to 127.0.0.1.

`http` sends a body while watching for an early answer, so a server that refuses a body without reading it is
seen doing so (the answer comes, or the connection closes, before the body is sent). `RawWebSocket` writes
websocket frames by hand: fragments that never finish, binary frames, thousands of events in one write.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from tests.support.pdfs import padded_pdf

CHUNK = 256 * 1024


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: the connection was closed or reset without an answer
    sent: int  # body bytes the server took before it answered or closed
    total: int
    body: bytes
    timed_out: bool = False  # neither an answer nor a close within the time allowed

    @property
    def unread(self) -> bool:
        """The server answered or closed before it had taken the whole body."""
        return self.sent < self.total

    @property
    def closed_unread(self) -> bool:
        """Closed by the server, without an answer, before the whole body was taken."""
        return self.status is None and self.unread and not self.timed_out

    def describe(self) -> str:
        text = str(self.status) if self.status is not None else (
            "no answer, connection left open" if self.timed_out else "closed without an answer")
        return text + (f" after {self.sent // 1024} of {self.total // 1024} KB" if self.unread else "")


def http(port: int, method: str, path: str, body: bytes = b"", *, headers: dict[str, str] | None = None,
         timeout: float = 30) -> Answer:
    """One request on its own connection (`Connection: close`); the body is sent until the server answers."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent, timed_out = _send_until_answered(sock, body, timeout)
        if timed_out:
            return Answer(None, sent, len(body), b"", timed_out=True)
        status, payload, timed_out = _read_answer(sock, timeout)
    return Answer(status, sent, len(body), payload, timed_out)


def _send_until_answered(sock: socket.socket, body: bytes, timeout: float) -> tuple[int, bool]:
    """Body bytes sent before the server answered or closed, and whether it did neither for `timeout`."""
    view, sent = memoryview(body), 0
    sock.setblocking(False)
    try:
        while sent < len(view):
            readable, writable, _ = select.select([sock], [sock], [], timeout)
            if readable:
                break  # an answer (or the close) came before the whole body was taken
            if not writable:
                return sent, True
            try:
                sent += sock.send(view[sent:sent + CHUNK])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    finally:
        sock.setblocking(True)
        sock.settimeout(timeout)
    return sent, False


def _read_answer(sock: socket.socket, timeout: float) -> tuple[int | None, bytes, bool]:
    data, timed_out = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
    except ConnectionResetError:
        pass
    except TimeoutError:
        timed_out = True
    if not data.startswith(b"HTTP/1."):
        return None, b"", timed_out
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body, False


def _complete(data: bytes) -> bool:
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return b"chunked" in head.lower() and body.endswith(b"0\r\n\r\n")


def urlencoded_fields(size: int, *, name: str = "f") -> bytes:
    """A form of about `size` bytes made of as many empty fields as fit (`f=&f=&...`)."""
    field = f"{name}=&".encode()
    return field * (size // len(field))


def flat_json(size: int) -> bytes:
    """About `size` bytes of `[[],[],...]`: one small object per three bytes once parsed."""
    return b"[" + b"[]," * ((size - 4) // 3) + b"[]]"


def nested_json(size: int) -> bytes:
    return b"[" * (size // 2) + b"]" * (size // 2)


def multipart(size: int) -> tuple[bytes, str]:
    boundary = "battery0boundary"
    data = padded_pdf(size + 600)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"folien.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# --- websocket ---------------------------------------------------------------------------------------------

TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


class RawWebSocket:
    """One Engine.IO websocket connection, frames written by hand (masked with a zero key: a plain copy)."""

    def __init__(self, port: int, *, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.closed = False
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the websocket handshake")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"no websocket: {head[:200]!r}")
        opened = self.receive(timeout)
        if opened is None or not opened[1].startswith(b"0"):
            raise ConnectionError(f"no Engine.IO open packet: {opened!r}")

    def frame(self, payload: bytes, *, opcode: int = TEXT, fin: bool = True) -> bytes:
        n = len(payload)
        length = bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack("!H", n) if n < 65536 else
                                                     bytes([0x80 | 127]) + struct.pack("!Q", n))
        return bytes([(0x80 if fin else 0) | opcode]) + length + b"\0\0\0\0" + payload

    def send(self, payload: bytes, *, opcode: int = TEXT, fin: bool = True) -> bool:
        """Write one frame; False when the server has closed the connection (before or while writing)."""
        return self.send_raw(self.frame(payload, opcode=opcode, fin=fin))

    def send_raw(self, data: bytes) -> bool:
        if self.closed or self.server_closed():
            return False
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
        return not self.closed

    def server_closed(self, wait: float = 0) -> bool:
        """Read what the server sent meanwhile (answering pings); True once it closed the connection."""
        deadline = time.monotonic() + wait
        while not self.closed:
            readable, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                break
            self._fill()
            while not self.closed and (frame := self._frame()) is not None:
                self._handle(*frame)
        return self.closed

    def receive(self, timeout: float = 10) -> tuple[int, bytes] | None:
        """The next text or binary frame (pings answered on the way); None when the server closed."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            frame = self._frame()
            if frame is not None:
                if self._handle(*frame):
                    return frame
                continue
            readable, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                raise TimeoutError("no frame from the server")
            self._fill()
        return None

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(1024 * 1024)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        if not chunk:
            self.closed = True
        self.buffer += chunk

    def _frame(self) -> tuple[int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        length, head = buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, head = struct.unpack_from("!H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, head = struct.unpack_from("!Q", buf, 2)[0], 10
        if len(buf) < head + length:
            return None
        self.buffer = buf[head + length:]
        return buf[0] & 0x0F, buf[head:head + length]

    def _handle(self, opcode: int, payload: bytes) -> bool:
        """True for a data frame the caller wants; control frames and Engine.IO pings are dealt with here."""
        if opcode == CLOSE:
            self.closed = True
            return False
        if opcode == PING:
            return False
        if payload == b"2":  # Engine.IO ping
            try:
                self.sock.sendall(self.frame(b"3"))
            except OSError:
                self.closed = True
            return False
        return True

    # --- Socket.IO ---------------------------------------------------------------------------------------

    def connect(self, token: str) -> None:
        """Connect to the default namespace with an API token."""
        self.send(b"40" + json.dumps({"token": token}).encode())
        while True:
            frame = self.receive()
            if frame is None:
                raise ConnectionError("closed while connecting")
            if frame[1].startswith(b"40"):
                return
            if frame[1].startswith(b"44"):
                raise ConnectionError(f"refused: {frame[1]!r}")

    def call(self, event: str, data: Any, ack: int = 1, timeout: float = 10) -> Any:
        """Emit `event` and wait for its ack; None when the server closed the connection instead."""
        if not self.send(f"42{ack}".encode() + json.dumps([event, data]).encode()):
            return None
        return self.acks({ack}, timeout).get(ack)

    def acks(self, wanted: set[int], timeout: float) -> dict[int, Any]:
        """Acks for the ids in `wanted` (fewer if the server closed or the time ran out)."""
        found: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(wanted) and time.monotonic() < deadline:
            try:
                frame = self.receive(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            if frame is None:
                break
            packet = frame[1]
            if packet.startswith(b"43"):
                start = packet.index(b"[")
                found[int(packet[2:start])] = json.loads(packet[start:])[0]
        return found

    def close(self) -> None:
        try:
            if not self.closed:
                self.sock.sendall(self.frame(b"", opcode=CLOSE))
        except OSError:
            pass
        self.sock.close()
        self.closed = True
