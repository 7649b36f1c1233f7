"""A light Socket.IO v5 / Engine.IO v4 client over a raw websocket, on asyncio: hundreds per process.

python-socketio's own client costs about 80 us per received event and saturates before the server does, so
the load benchmarks (`chat_load.py`, `scaleout_bench.py`) and the fault drills (`tests/security`) speak the
public protocol through this one instead. It does the websocket handshake and framing, answers pings,
connects to the default namespace with an API token, and matches acks to calls; subclasses handle events.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any


class RawSocketIOClient(asyncio.Protocol):
    """One connection. `on_event(packet)` gets every event packet (`42[...]`) as raw bytes."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.buffer = b""
        self.handshaken = False
        self.transport: asyncio.Transport | None = None
        self.acks: dict[int, asyncio.Future[bytes]] = {}
        self.next_ack = 1
        self.connected: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.lost = asyncio.Event()
        self.refused: str | None = None  # the server's reason, when it refused the connection

    # --- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_result(False)
        for future in self.acks.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
        self.acks.clear()
        self.lost.set()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshaken:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[:end].split(b"\r\n", 1)[0]:
                self.connected.set_result(False)
                return
            self.handshaken = True
            self.buffer = self.buffer[end + 4:]
        buf, pos = self.buffer, 0
        while len(buf) - pos >= 2:
            length, head = buf[pos + 1] & 0x7F, 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if len(buf) - pos < head + length:
                break
            opcode = buf[pos] & 0x0F
            payload = buf[pos + head:pos + head + length]
            pos += head + length
            if opcode == 1:
                self._packet(payload)
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
        self.buffer = buf[pos:]

    # --- sending --------------------------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        """One masked text frame (clients must mask)."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("not connected")
        payload = text.encode()
        mask, n = os.urandom(4), len(payload)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + struct.pack("!H", n) if n < 65536 else
                                  bytes([0x80 | 127]) + struct.pack("!Q", n))
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        masked = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
        self.transport.write(header + mask + masked)

    def send_call(self, event: str, data: Any) -> asyncio.Future[bytes]:
        """Emit `event` with an ack id; the future gets the ack's raw JSON list (`[{...}]`)."""
        ack = self.next_ack
        self.next_ack += 1
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.acks[ack] = future
        self.send_text(f"42{ack}" + json.dumps([event, data], separators=(",", ":")))
        return future

    async def call(self, event: str, data: Any, timeout: float = 10) -> Any:
        """Emit `event` and wait for its ack, decoded."""
        return json.loads(await asyncio.wait_for(self.send_call(event, data), timeout))[0]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # --- receiving ------------------------------------------------------------------------------------------

    def on_event(self, packet: bytes) -> None:
        """An event from the server (`42["name", data]`); subclasses look at what they need."""

    def _packet(self, packet: bytes) -> None:
        kind = packet[:1]
        if kind == b"2":  # ping
            self.send_text("3")
        elif kind == b"0":  # open: connect to the default namespace
            self.send_text("40" + json.dumps({"token": self.token} if self.token else {}))
        elif packet.startswith(b"40"):
            self.connected.set_result(True)
        elif packet.startswith(b"44"):
            self.refused = packet[2:].decode(errors="replace")
            self.connected.set_result(False)
        elif packet.startswith(b"43"):
            end = packet.index(b"[")
            future = self.acks.pop(int(packet[2:end]), None)
            if future is not None and not future.done():
                future.set_result(packet[end:])
        elif packet.startswith(b"42"):
            self.on_event(packet)
