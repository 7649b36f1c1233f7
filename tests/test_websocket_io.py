"""The websocket helpers of `conference.serving` that need no running server, and the limits' start-up checks."""

from __future__ import annotations

import os
import warnings
from types import SimpleNamespace
from typing import Any

import pytest

from conference.serving.direct_writes import websocket_text_frame
from conference.serving.limits import limit_websocket_messages
from conference.serving.unmasking import unmask


def eventlet_unmask(data: bytes, mask: bytes, length: int | None = None, offset: int = 0) -> bytes:
    """eventlet's own byte-by-byte version (eventlet/websocket.py, RFC6455WebSocket._apply_mask)."""
    if length is None:
        length = len(data)
    return b"".join(bytes((data[i] ^ mask[(offset + i) % 4],)) for i in range(length))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 4096, 65_537])
def test_unmask_matches_eventlet_for_every_offset_and_length(size: int) -> None:
    data, mask = os.urandom(size), os.urandom(4)
    for offset in range(5):
        assert unmask(data, mask, offset=offset) == eventlet_unmask(data, mask, offset=offset)
        shorter = max(0, size - 2)
        assert unmask(data, mask, shorter, offset) == eventlet_unmask(data, mask, shorter, offset)
    assert unmask(unmask(data, mask), mask) == data


def test_unmask_matches_the_installed_eventlet() -> None:
    """If eventlet changes its function, this notices (the replacement must still give the same bytes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from eventlet.websocket import RFC6455WebSocket
    data, mask = os.urandom(777), os.urandom(4)
    original = RFC6455WebSocket.__dict__["_apply_mask"].__func__
    assert unmask(data, mask, 700, 3) == original(data, mask, length=700, offset=3)


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_websocket_text_frame_header_for_every_length_class(size: int) -> None:
    from wsproto.frame_protocol import FrameProtocol, Opcode

    text = "ä" * (size // 2) + "x" * (size % 2)  # multi-byte characters: the length counts bytes
    frame = websocket_text_frame(text)
    reader = FrameProtocol(client=True, extensions=[])  # a client reads unmasked frames from the server
    reader.receive_bytes(frame)
    frames = list(reader.received_frames())
    assert len(frames) == 1
    assert frames[0].opcode is Opcode.TEXT and frames[0].frame_finished and frames[0].message_finished
    assert frames[0].payload == text


# --- the message limits' start-up checks ------------------------------------------------------------------------


def fake_engineio_server(websocket_class: Any) -> SimpleNamespace:
    """What the limits use of an Engine.IO server, with its own copy of the driver table."""
    return SimpleNamespace(_async={"websocket": websocket_class}, max_http_buffer_size=10,
                           transports=["polling", "websocket"], allow_upgrades=True)


def test_eventlet_message_limit_counts_every_fragment(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from engineio.async_drivers import eventlet as driver
        from eventlet import websocket
    monkeypatch.setattr(websocket.RFC6455WebSocket, "Message", websocket.RFC6455WebSocket.Message)  # restored after
    server = fake_engineio_server(driver.WebSocketWSGI)
    assert limit_websocket_messages(server, "eventlet") is True
    assert server.transports == ["polling", "websocket"]
    message = websocket.RFC6455WebSocket.Message(1, 10, decoder=websocket.RFC6455WebSocket.UTF8Decoder())
    for _ in range(1_000):
        message.push(b"")  # empty fragments cost nothing and count nothing
    message.push("äöü".encode())
    message.push(b"abcd")
    with pytest.raises(websocket.FailedConnectionError) as refused:
        message.push(b"e")  # 11 bytes: one over the limit, though no fragment is
    assert refused.value.status == 1009
    message.push(b"", final=True)
    assert message.getvalue() == "äöüabcd"
    wsgi = server._async["websocket"](lambda ws: None, server)
    assert wsgi.max_frame_length == 10 and wsgi.support_legacy_versions is False


@pytest.mark.parametrize("mode", ["gevent", "threading"])
def test_simple_websocket_gets_the_message_limit(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from simple_websocket.ws import Base

    driver = importlib.import_module(f"engineio.async_drivers.{mode}")
    for name in ("_handle_events", "receive", "close"):
        monkeypatch.setattr(Base, name, getattr(Base, name))  # restored after
    server = fake_engineio_server(driver._async["websocket"])
    assert limit_websocket_messages(server, mode) is True
    wsgi = server._async["websocket"](lambda ws: None, server)
    assert wsgi.server_args["max_message_size"] == 10
    assert (Base.receive.__module__ == "conference.serving.limits") is (mode == "gevent")  # the bounded queue


@pytest.mark.parametrize("mode", ["eventlet", "gevent", "threading"])
def test_message_limit_turns_websockets_off_when_the_library_is_not_as_expected(
        mode: str, caplog: pytest.LogCaptureFixture) -> None:
    server = fake_engineio_server(object)  # e.g. another websocket implementation chosen by Engine.IO
    assert limit_websocket_messages(server, mode) is False
    assert server.transports == ["polling"] and server.allow_upgrades is False
    assert server._async["websocket"] is object
    assert "long-polling only" in caplog.text
