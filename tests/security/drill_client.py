"""A light raw Socket.IO client (asyncio, one socket each, hundreds per process) for the fault drills.

Speaks Engine.IO v4 / Socket.IO v5 over a websocket, like `bench/chat_load.py`, and follows the protocol's
"never miss a message" rule: after a reconnect it joins again and asks `chat:history` after the highest id
it had seen before the connection dropped. It records every chat id it receives, live and from history.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any


class DrillClient(asyncio.Protocol):
    def __init__(self, token: str, room: str) -> None:
        self.token = token
        self.room = room
        self.buffer = b""
        self.handshaken = False
        self.transport: asyncio.Transport | None = None
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_ack = 1
        self.connected: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Event = asyncio.Event()
        self.live_ids: list[int] = []  # every live delivery, in arrival order (duplicates would show here)
        self.history_ids: list[int] = []
        self.refused: str | None = None

    # --- transport ----------------------------------------------------------------------------------------

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

    def send_text(self, text: str) -> None:
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

    def _packet(self, packet: bytes) -> None:
        kind = packet[:1]
        if kind == b"2":
            self.send_text("3")
        elif kind == b"0":
            self.send_text("40" + json.dumps({"token": self.token}))
        elif packet.startswith(b"40"):
            self.connected.set_result(True)
        elif packet.startswith(b"44"):
            self.refused = packet[2:].decode(errors="replace")
            self.connected.set_result(False)
        elif packet.startswith(b"43"):
            end = packet.index(b"[")
            future = self.acks.pop(int(packet[2:end]), None)
            if future is not None and not future.done():
                future.set_result(json.loads(packet[end:])[0])
        elif packet.startswith(b"42"):
            name, data = json.loads(packet[2:])[:2]
            if name == "chat:message" and data.get("room") == self.room:
                self.live_ids.append(data["id"])
            elif name == "chat:messages" and data.get("room") == self.room:
                self.live_ids.extend(m["id"] for m in data["messages"])

    async def call(self, event: str, data: Any, timeout: float = 10) -> Any:
        ack = self.next_ack
        self.next_ack += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack] = future
        self.send_text(f"42{ack}" + json.dumps([event, data], separators=(",", ":")))
        return await asyncio.wait_for(future, timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # --- the protocol's catch-up ----------------------------------------------------------------------------

    def seen(self) -> set[int]:
        return set(self.live_ids) | set(self.history_ids)

    async def catch_up(self, after_id: int) -> None:
        while True:
            ack = await self.call("chat:history", {"room": self.room, "after_id": after_id})
            assert ack.get("ok") is True, ack
            ids = [m["id"] for m in ack["messages"]]
            assert ids == sorted(ids), ids  # history comes in id order
            self.history_ids.extend(i for i in ids if i not in self.seen())
            if not ack.get("has_more") or not ids:
                return
            after_id = ids[-1]


async def open_client(port: int, token: str, room: str) -> DrillClient:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(lambda: DrillClient(token, room), "127.0.0.1", port)
    if not await asyncio.wait_for(client.connected, 20):
        raise ConnectionError(f"refused: {client.refused}")
    ack = await client.call("join", {"room": room}, timeout=20)
    if ack.get("ok") is not True:
        raise ConnectionError(f"join refused: {ack}")
    return client


class Participant:
    """One person's connection that survives restarts: reconnects and catches up as the protocol says."""

    def __init__(self, port: int, token: str, room: str) -> None:
        self.port, self.token, self.room = port, token, room
        self.client: DrillClient | None = None
        self.previous: list[DrillClient] = []
        self.reconnects = 0

    async def start(self) -> None:
        self.client = await open_client(self.port, self.token, self.room)

    def seen(self) -> set[int]:
        ids: set[int] = set()
        for client in [*self.previous, *([self.client] if self.client else [])]:
            ids |= client.seen()
        return ids

    def live_duplicates(self) -> int:
        """The same id delivered twice live over one connection (the server's fault, not the overlap)."""
        return sum(len(c.live_ids) - len(set(c.live_ids)) for c in [*self.previous, self.client] if c)

    async def ensure(self, deadline: float) -> DrillClient:
        """The open connection, after reconnecting and catching up if the old one was lost."""
        loop = asyncio.get_running_loop()
        assert self.client is not None
        if not self.client.lost.is_set():
            return self.client
        last = max(self.seen(), default=0)
        while True:
            try:
                fresh = await open_client(self.port, self.token, self.room)
                break
            except (TimeoutError, OSError, ConnectionError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self.previous.append(self.client)
        self.client = fresh
        self.reconnects += 1
        await fresh.catch_up(last)
        return fresh
