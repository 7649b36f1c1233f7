"""The websocket helpers of `conference.websocket_io` that need no running server."""

from __future__ import annotations

import os
import warnings

import pytest

from conference.websocket_io import unmask, websocket_text_frame


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
