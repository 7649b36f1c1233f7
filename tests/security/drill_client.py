"""A light raw Socket.IO client (asyncio, one socket each, hundreds per process) for the fault drills.

Speaks Engine.IO v4 / Socket.IO v5 over a websocket (`bench/raw_socketio.py`, like the load benchmarks) and
follows the protocol's "never miss a message" rule: after a reconnect it joins again and asks `chat:history` after the highest id
it had seen before the connection dropped. It records every chat id it receives, live and from history.
"""

from __future__ import annotations

import asyncio
import json
import socket

from bench.raw_socketio import RawSocketIOClient


class DrillClient(RawSocketIOClient):
    def __init__(self, token: str, room: str) -> None:
        super().__init__(token)
        self.room = room
        self.live_ids: list[int] = []  # every live delivery, in arrival order (duplicates would show here)
        self.history_ids: list[int] = []

    def on_event(self, packet: bytes) -> None:
        name, data = json.loads(packet[2:])[:2]
        if name == "chat:message" and data.get("room") == self.room:
            self.live_ids.append(data["id"])
        elif name == "chat:messages" and data.get("room") == self.room:
            self.live_ids.extend(m["id"] for m in data["messages"])

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


async def open_client(port: int, token: str, room: str, *, receive_buffer: int | None = None) -> DrillClient:
    """Connect, join `room`. `receive_buffer` (bytes): a tiny TCP window, so the server's writes stall early."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        _transport, client = await loop.create_connection(lambda: DrillClient(token, room), sock=sock)
    except BaseException:
        sock.close()  # refused (a server restarting): the transport never took the socket over
        raise
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
