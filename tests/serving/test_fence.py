"""The fence itself, and the in-process seams with their fences down: same results on the public path."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
from wsproto.events import Ping
from wsproto.frame_protocol import FrameProtocol, Opcode

from conference.presentations import receiver
from conference.serving import fence, heap, multipart
from conference.serving.writer import WholeFrames, install_whole_frames
from tests.presentations.test_storage import TRICKY_CONTENTS, body, receive


def test_a_release_outside_the_range_or_a_missing_name_keeps_a_seam_off(monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    assert fence.problem(("werkzeug",), ((fence, "allows"),)) is None
    monkeypatch.setattr(fence, "release", lambda distribution: (3, 2, 0))
    with caplog.at_level(logging.WARNING, logger="conference.serving"):
        assert fence.allows("a seam", ("werkzeug",), fallback="the public path") is False
    assert caplog.messages == ["a seam is off: werkzeug 3.2.0 is outside the tested range 3.0 to 3.2 (exclusive); "
                               "the public path"]
    assert fence.switched_off["a seam"].startswith("werkzeug 3.2.0")
    monkeypatch.setattr(fence, "release", lambda distribution: (3, 1, 9))
    assert fence.problem(("werkzeug",), ((fence, "no_such_name"),)) == \
        "conference.serving.fence has no no_such_name"
    monkeypatch.setattr(fence, "release", lambda distribution: None)
    assert fence.problem(("werkzeug",)) == "werkzeug is not installed"


def test_the_installed_libraries_are_inside_every_tested_range() -> None:
    """Fails when the lock moves past a range: then test the seams on the new release and move the range."""
    assert {name: fence.problem((name,)) for name in fence.TESTED} == dict.fromkeys(fence.TESTED)


def test_heap_keeper_off_outside_the_measured_interpreters(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="conference.serving"):
        assert heap.heap_keeping_allowed((3, 14)) is False
    assert caplog.messages == ["heap keeper (CPython's generational collector) is off: cpython 3.14 is outside the "
                               "tested CPython 3.11 to 3.14 (exclusive); the interpreter's own collection schedule"]
    assert heap.heap_keeping_allowed((3, 11)) is True


@pytest.mark.parametrize("fast", [True, False])
def test_uploads_intact_with_and_without_the_multipart_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 fast: bool) -> None:
    multipart.multipart_fast_path.cache_clear()
    if not fast:
        monkeypatch.setattr(fence, "release", lambda distribution: (0, 0))
    try:
        assert multipart.multipart_fast_path() is fast
        for content in TRICKY_CONTENTS:
            for chunk_size in (17, 33, 64, 4096):
                monkeypatch.setattr(receiver, "CHUNK_SIZE", chunk_size)
                received = receive(body(content, field_after=True), tmp_path)
                try:
                    assert received.temp_path.read_bytes() == content
                    assert received.sha256 == hashlib.sha256(content).hexdigest()
                    assert received.fields == {"csrf_token": "token-value", "note": "after the file"}
                finally:
                    received.discard()
    finally:
        multipart.multipart_fast_path.cache_clear()


class TrickleSocket:
    """A socket that, like a non-blocking green socket to a slow reader, takes at most 300 bytes per send."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> int:
        time.sleep(0.0001)  # another thread's turn in the middle of a frame
        return self.sock.send(bytes(data[:300]))

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view):]

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.sock, name)


def read_frames(sock: socket.socket, total: int) -> list[tuple[Opcode, bytes]]:
    """Parse everything the server side wrote as websocket frames (a cut-in frame fails to parse)."""
    protocol = FrameProtocol(client=True, extensions=[])
    frames: list[tuple[Opcode, bytes]] = []
    pending: tuple[Opcode, bytes] | None = None
    received = 0
    sock.settimeout(10)
    while received < total:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += len(chunk)
        protocol.receive_bytes(chunk)
        for frame in protocol.received_frames():  # a frame may come in pieces; ping/close come whole
            payload = frame.payload  # bytes, str (text) or (code, reason) (close)
            data = payload.encode() if isinstance(payload, str) else \
                bytes(payload) if isinstance(payload, (bytes, bytearray)) else repr(payload).encode()
            pending = (frame.opcode, data) if pending is None else (pending[0], pending[1] + data)
            if frame.frame_finished:
                frames.append(pending)
                pending = None
    return frames


def test_concurrent_sends_and_pings_never_interleave(monkeypatch: pytest.MonkeyPatch) -> None:
    """simple-websocket's data, ping and close frames all pass the one writer: whole, never cut into."""
    import simple_websocket.ws

    base = simple_websocket.ws.Base
    monkeypatch.setattr(base, "send", base.send)  # restored after the test
    monkeypatch.setattr(base, "sock", None, raising=False)
    assert install_whole_frames(threading.Lock) is not None
    server_end, client_end = socket.socketpair()
    environ = {"werkzeug.socket": TrickleSocket(server_end), "HTTP_HOST": "localhost", "HTTP_CONNECTION": "Upgrade",
               "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
               "HTTP_SEC_WEBSOCKET_VERSION": "13"}
    connection = simple_websocket.ws.Server(environ)  # the handshake answer goes through the writer too
    assert isinstance(connection.sock, WholeFrames)
    head = b""
    client_end.settimeout(10)
    while b"\r\n\r\n" not in head:
        head += client_end.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    messages = [f"{index:03d}" + "m" * 5000 for index in range(40)]
    def pinger() -> None:
        for _ in range(200):
            try:
                connection.sock.send(connection.ws.send(Ping(b"p")))  # as simple-websocket's reading task does
            except OSError:
                return

    expected = 40 * (5003 + 4) + 200 * 3 + 4  # text frames, ping frames, the close frame
    frames: list[tuple[Opcode, bytes]] = []
    failures: list[BaseException] = []

    def read() -> None:
        try:
            frames.extend(read_frames(client_end, expected))
        except BaseException as error:  # noqa: BLE001 - shown by the assertion below
            failures.append(error)
            client_end.shutdown(socket.SHUT_RDWR)  # a corrupt stream: the writers fail instead of waiting

    reader = threading.Thread(target=read)
    reader.start()
    thread = threading.Thread(target=pinger)
    thread.start()
    try:
        for message in messages:
            connection.send(message)
    finally:
        thread.join()
    connection.close()
    reader.join(10)
    assert failures == []
    texts = [payload.decode() for opcode, payload in frames if opcode is Opcode.TEXT]
    assert texts == messages
    assert [payload for opcode, payload in frames if opcode is Opcode.PING] == [b"p"] * 200
    assert frames[-1][0] is Opcode.CLOSE
    client_end.close()  # the reading task sees the end and stops
    connection.thread.join(5)
    assert not connection.thread.is_alive()
