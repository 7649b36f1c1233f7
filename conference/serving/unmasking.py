"""Eventlet's websocket unmasking as one integer XOR instead of a loop over bytes.

Seam (private name): `eventlet.websocket.RFC6455WebSocket._apply_mask`. Off (eventlet's own byte loop)
when eventlet is outside the tested range or the name is gone; tests/test_websocket_io.py compares results.
"""

from __future__ import annotations

from conference.serving import fence

SEAM = "fast websocket unmasking (eventlet)"


def unmask(data: bytes, mask: bytes, length: int | None = None, offset: int = 0) -> bytes:
    """XOR `data[:length]` with the 4-byte websocket `mask`, starting at mask position `offset`."""
    if length is None:
        length = len(data)
    if length <= 0:
        return b""
    key = bytes(mask[(offset + i) % 4] for i in range(4)) * (length // 4 + 1)
    return (int.from_bytes(data[:length], "big") ^ int.from_bytes(key[:length], "big")).to_bytes(length, "big")


def faster_websocket_unmasking() -> bool:
    """Eventlet unmasks every incoming websocket frame one byte at a time in Python (a bytes object per
    byte: ~0.1 ms for a chat message, ~40 ms for a 64 KB frame); the same XOR on whole integers is one C
    loop. Same results (tests/test_websocket_io.py compares them). Returns whether it is installed."""
    from eventlet import websocket

    if not fence.allows(SEAM, ("eventlet",), ((websocket, "RFC6455WebSocket"),
                                              (websocket.RFC6455WebSocket, "_apply_mask")),
                        fallback="eventlet unmasks byte by byte"):
        return False
    websocket.RFC6455WebSocket._apply_mask = staticmethod(unmask)
    return True
