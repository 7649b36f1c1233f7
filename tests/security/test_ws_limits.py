"""Socket limits against a real `conference run` under eventlet and gevent: messages, binary data, stalled readers.

Every case speaks the raw protocol over a plain socket, so it can send what no browser would: fragments that
never end, frames over the limit, binary attachments, a long-polling body over the limit, a reader that stops.
The server's memory is read from /proc/<pid>/status (VmRSS) before and after.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conference.factory import SOCKET_MAX_MESSAGE_BYTES
from conference.serving.unmasking import unmask
from tests.support.server import RunningServer, running_server

pytestmark = [pytest.mark.server]

LOBBY = "lobby:digitalkonferenz-2027"
SOCKET_TIMEOUT = 2  # seconds: CONFERENCE_SOCKET_TIMEOUT of the test servers (the default is 60)
MEMORY_BOUND_KB = 5 * 1024  # the goal for anything an unauthenticated client can do
CONTINUATION = 60 * 1024  # each frame under the limit: only the whole message is over it
TEXT, BINARY, CONTINUE, CLOSE = 0x1, 0x2, 0x0, 0x8


class Closed(Exception):
    """The server ended the connection (close frame, EOF or reset)."""


class RawWebSocket:
    """A blocking Engine.IO v4 websocket client that builds its frames by hand."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        try:
            while b"\r\n\r\n" not in self.buffer:
                self._fill()
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            assert b" 101 " in head.split(b"\r\n", 1)[0], head
            assert self.text().startswith("0{"), "no Engine.IO open packet"
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    # --- frames -------------------------------------------------------------------------------------------

    def frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
        """One masked frame (clients must mask), as bytes on the wire."""
        mask, length = os.urandom(4), len(payload)
        first = (0x80 if fin else 0) | opcode
        if length < 126:
            header = struct.pack("!BB", first, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", first, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, length)
        return header + mask + unmask(payload, mask)

    def send(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        self.sock.sendall(self.frame(opcode, payload, fin=fin))

    def send_until_closed(self, frames: Iterator[bytes]) -> int:
        """Send `frames` until they are all sent or the server ends the connection; returns bytes sent."""
        sent = 0
        for frame in frames:
            try:
                self.sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(frame)
        return sent

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError as error:
            raise Closed("reset") from error
        if not data:
            raise Closed("eof")
        self.buffer += data

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        opcode, payload = first & 0x0F, self._take(length)
        if opcode == CLOSE:
            raise Closed(f"close frame {struct.unpack('!H', payload[:2])[0] if len(payload) >= 2 else ''}")
        return opcode, payload

    def text(self) -> str:
        """The next text message, answering Engine.IO pings on the way."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == TEXT and payload == b"2":
                self.send(TEXT, b"3")
            elif opcode == TEXT:
                return payload.decode()

    def closed_within(self, seconds: float) -> str | None:
        """How the server ended the connection within `seconds`, or None if it is still open."""
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                self.read_frame()
        except Closed as closed:
            return str(closed)
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(5)
        return None

    # --- Socket.IO ------------------------------------------------------------------------------------------

    def connect(self, token: str) -> None:
        self.send(TEXT, ("40" + json.dumps({"token": token})).encode())
        answer = self.text()
        assert answer.startswith("40{"), answer

    def call(self, event: str, data: Any, ack: int, *, fragments: int = 1) -> Any:
        """Emit `event` with ack id `ack` (in `fragments` frames) and return the ack's payload."""
        packet = f"42{ack}{json.dumps([event, data])}".encode()
        step = -(-len(packet) // fragments)
        parts = [packet[i:i + step] for i in range(0, len(packet), step)]
        for index, part in enumerate(parts):
            self.send(TEXT if index == 0 else CONTINUE, part, fin=index == len(parts) - 1)
        while True:
            answer = self.text()
            if answer.startswith(f"43{ack}["):
                return json.loads(answer[len(f"43{ack}"):])[0]


Opener = Callable[[], RawWebSocket]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError("VmRSS")


def settled_rss_kb(pid: int) -> int:
    """VmRSS once the server has had a moment to act on what it received."""
    time.sleep(0.3)
    return rss_kb(pid)


@pytest.fixture(scope="module", params=["eventlet", "gevent"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    instance = tmp_path_factory.mktemp(f"ws-{request.param}") / "instance"
    with running_server(instance, request.param, demo_attendees=3, tokens=True,
                        CONFERENCE_SOCKET_TIMEOUT=str(SOCKET_TIMEOUT)) as srv:
        warm = RawWebSocket(srv.ports[0])  # the first connection's one-off allocations are not the attack's
        try:
            warm.connect(srv.tokens[0])
            warm.call("join", {"room": LOBBY}, 1)
        finally:
            warm.close()
        yield srv


@pytest.fixture
def open_ws(server: RunningServer) -> Iterator[Opener]:
    """Opens websockets to the server; closes them after the test, whatever happened."""
    opened: list[RawWebSocket] = []

    def open_one() -> RawWebSocket:
        opened.append(RawWebSocket(server.ports[0]))
        return opened[-1]

    yield open_one
    for ws in opened:
        ws.close()


def test_fragment_bomb_before_connect_is_closed_and_keeps_no_memory(server: RunningServer, open_ws: Opener) -> None:
    """A text message begun and continued in 60 KB frames, never finished, before any Socket.IO connect."""
    pid = server.worker_pid(0)
    before = settled_rss_kb(pid)
    ws = open_ws()
    total = 32 * 1024 * 1024

    def frames() -> Iterator[bytes]:
        yield ws.frame(TEXT, b"4" + b"x" * (CONTINUATION - 1), fin=False)
        for _ in range(total // CONTINUATION):
            yield ws.frame(CONTINUE, b"x" * CONTINUATION, fin=False)

    sent = ws.send_until_closed(frames())
    how = ws.closed_within(5)
    growth = settled_rss_kb(pid) - before
    assert how is not None, f"still open after {sent} bytes of one unfinished message"
    assert sent < total // 2, "the server read on after the limit"  # what is left fits in the socket buffers
    assert growth < MEMORY_BOUND_KB, f"RSS grew {growth} KB after {sent} bytes ({how})"


def test_single_frame_over_the_limit_is_closed_before_it_is_read(server: RunningServer, open_ws: Opener) -> None:
    """A frame announcing 16 MB: the connection ends on its header (the rest is never sent)."""
    ws = open_ws()
    mask = os.urandom(4)
    header = struct.pack("!BBQ", 0x80 | TEXT, 0x80 | 127, 16 * 1024 * 1024) + mask
    ws.send_until_closed(iter([header, unmask(b"4" + b"x" * (2 * SOCKET_MAX_MESSAGE_BYTES), mask)]))
    assert ws.closed_within(5) is not None


def test_pre_rfc6455_handshake_is_refused(server: RunningServer) -> None:
    """Hixie-75 framing has no length (eventlet buffered up to a 0xFF byte): no such websocket is opened."""
    port = server.ports[0]
    status, _ = _http(port, (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                             f"Origin: http://127.0.0.1:{port}\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
                             f"\r\n").encode() + b"\x00" + b"x" * 65536)
    assert status != 101


def test_fragmented_message_under_the_limit_is_served_and_chat_goes_on(server: RunningServer, open_ws: Opener) -> None:
    ws = open_ws()
    ws.connect(server.tokens[1])
    assert ws.call("join", {"room": LOBBY}, 1, fragments=3)["ok"] is True
    text = "Fragmentiert " + "ä" * 1_900  # 2 bytes each: the message is larger than any one of its frames
    ack = ws.call("chat:send", {"room": LOBBY, "text": text, "client_id": os.urandom(8).hex()}, 2, fragments=4)
    assert ack["ok"] is True and ack["message"]["text"] == text
    ack = ws.call("chat:send", {"room": LOBBY, "text": "danach", "client_id": os.urandom(8).hex()}, 3)
    assert ack["ok"] is True and ack["message"]["text"] == "danach"


def test_binary_event_with_attachments_is_closed_and_keeps_no_memory(server: RunningServer, open_ws: Opener) -> None:
    """`451234567-[...]` announces attachments; the binary frames that follow must not be kept."""
    pid = server.worker_pid(0)
    ws = open_ws()
    ws.connect(server.tokens[2])
    before = settled_rss_kb(pid)
    placeholder = json.dumps(["chat:send", {"_placeholder": True, "num": 0}])

    total = 32 * 1024 * 1024

    def frames() -> Iterator[bytes]:
        yield ws.frame(TEXT, f"451234567-{placeholder}".encode())
        for _ in range(total // CONTINUATION):
            yield ws.frame(BINARY, b"\x00" * CONTINUATION)

    sent = ws.send_until_closed(frames())
    how = ws.closed_within(5)
    growth = settled_rss_kb(pid) - before
    assert how is not None, f"still open after {sent} bytes of attachments"
    assert sent < total // 2, "the server read on after refusing the packet"
    assert growth < MEMORY_BOUND_KB, f"RSS grew {growth} KB ({how})"


def test_quiet_websocket_outlives_the_socket_timeout(server: RunningServer, open_ws: Opener) -> None:
    """Websockets keep Engine.IO's ping cycle (45 s) as their timeout, not the HTTP socket timeout."""
    ws = open_ws()
    ws.connect(server.tokens[0])
    assert ws.call("join", {"room": LOBBY}, 1)["ok"] is True
    time.sleep(SOCKET_TIMEOUT + 1.5)
    ack = ws.call("chat:send", {"room": LOBBY, "text": "noch da", "client_id": os.urandom(8).hex()}, 2)
    assert ack["ok"] is True


@pytest.mark.parametrize("connected", [False, True], ids=["anonymous", "connected"])
def test_binary_websocket_message_is_closed(server: RunningServer, open_ws: Opener, connected: bool) -> None:
    ws = open_ws()
    if connected:
        ws.connect(server.tokens[0])
    ws.send(BINARY, b"\x04binary")
    assert ws.closed_within(5) is not None


def _http(port: int, request: bytes) -> tuple[int, bytes]:
    """Send `request` (with `Connection: close`), read the answer to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass  # closed with our body unread: the answer came before
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _polling_session(port: int) -> str:
    status, body = _http(port, b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Connection: close\r\n\r\n")
    assert status == 200
    return str(json.loads(body[body.index(b"{"):body.rindex(b"}") + 1])["sid"])


def test_long_polling_post_over_the_limit_is_refused_at_once(server: RunningServer) -> None:
    port = server.ports[0]
    sid = _polling_session(port)
    payload = b"4" + b"x" * (SOCKET_MAX_MESSAGE_BYTES + 1)
    pid = server.worker_pid(0)
    before = settled_rss_kb(pid)
    started = time.monotonic()
    status, _ = _http(port, (f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             f"Content-Type: text/plain\r\nContent-Length: {len(payload)}\r\n"
                             f"Connection: close\r\n\r\n").encode() + payload)
    assert status == 413
    assert time.monotonic() - started < 2  # Engine.IO's own refusal waited for the session's next GET
    assert settled_rss_kb(pid) - before < MEMORY_BOUND_KB
    status, _ = _http(port, f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            f"Connection: close\r\n\r\n".encode())
    assert status == 400  # the session ended with the refusal


def test_long_polling_post_without_length_is_refused(server: RunningServer) -> None:
    port = server.ports[0]
    sid = _polling_session(port)
    status, _ = _http(port, (f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             f"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                             f"Connection: close\r\n\r\n").encode() + b"10000\r\n" + b"4" * 65536 + b"\r\n")
    assert status == 411


def test_stalled_reader_is_dropped_after_the_socket_timeout(server: RunningServer) -> None:
    """Pipelined requests for a 190 KB file, answers never read: the server's writes stall, then give up."""
    path = "/static/vendor/socket.io/socket.io.min.js.map"
    requests = 100  # ~19 MB of answers: far more than both sides' socket buffers hold
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", server.ports[0]))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() * requests)
    time.sleep(SOCKET_TIMEOUT + 2)
    received, ended = 0, False
    sock.settimeout(2)
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
        ended = True
    except ConnectionResetError:
        ended = True
    except TimeoutError:
        pass  # the server still holds the connection open, waiting for us
    finally:
        sock.close()
    size = (Path(__file__).resolve().parents[2] / "static" / path.removeprefix("/static/")).stat().st_size
    assert ended, f"connection still open after {received} bytes"
    assert received < requests * size, "every answer was delivered: nothing timed out"


def _polling(port: int, sid: str, body: str | None = None) -> list[str]:
    """One long-polling request: POST `body`, or GET the waiting packets."""
    request = (f"{'POST' if body is not None else 'GET'} /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nConnection: close\r\n")
    data = (body or "").encode()
    if body is not None:
        request += f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(data)}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode() + b"\r\n" + data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n", 1)[0], head
    return payload.decode().split("\x1e")


def test_websockets_are_turned_off_when_the_limit_cannot_be_installed(tmp_path: Path) -> None:
    """eventlet without the names the limit needs: the server says so, refuses websockets, serves polling."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import eventlet.websocket\ndel eventlet.websocket.RFC6455WebSocket.Message\n")
    path = os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])
    with running_server(tmp_path / "instance", "eventlet", demo_attendees=1, tokens=True, PYTHONPATH=path) as srv:
        port = srv.ports[0]
        with pytest.raises(AssertionError):
            RawWebSocket(port)  # no 101: the handshake is refused
        sid = _polling_session(port)
        assert _polling(port, sid, "40" + json.dumps({"token": srv.tokens[0]})) == ["OK"]
        assert _polling(port, sid)[0].startswith("40{")
        _polling(port, sid, "421" + json.dumps(["join", {"room": LOBBY}]))
        answers = [p for p in _polling(port, sid) if p.startswith("431[")]
        assert json.loads(answers[0][3:])[0]["ok"] is True
        assert "serving Socket.IO over long-polling only" in srv.log.read_text()
