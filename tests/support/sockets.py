"""A python-socketio test client that records what it receives, for tests against real server processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import socketio as sio

SLUG = "digitalkonferenz-2027"
LOBBY = f"lobby:{SLUG}"


class LiveClient:
    """One Socket.IO connection (websocket unless told otherwise) with a log of received events."""

    def __init__(self, url: str, token: str | None = None, *, reconnection: bool = False, **connect: Any) -> None:
        self.url = url
        self.client = sio.Client(reconnection=reconnection, reconnection_delay=0.2, reconnection_delay_max=0.5)
        self.received: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.client.on("*", self._record)
        self.connect_args: dict[str, Any] = {"transports": ["websocket"], "wait_timeout": 10}
        if token is not None:
            self.connect_args["auth"] = {"token": token}
        self.connect_args.update(connect)
        self.client.connect(url, **self.connect_args)

    def _record(self, event: str, data: Any = None) -> None:
        with self.lock:
            self.received.append((event, data))

    def call(self, event: str, data: Any, timeout: float = 10) -> Any:
        return self.client.call(event, data, timeout=timeout)

    def events(self, name: str, *, wait: float = 3.0, count: int = 1) -> list[Any]:
        deadline = time.monotonic() + wait
        while True:
            with self.lock:
                found = [data for event, data in self.received if event == name]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def message_ids(self, room: str = LOBBY) -> set[int]:
        """Ids of chat messages received live (single and grouped frames)."""
        with self.lock:
            received = list(self.received)
        ids: set[int] = set()
        for event, data in received:
            if event == "chat:message" and data.get("room") == room:
                ids.add(data["id"])
            elif event == "chat:messages" and data.get("room") == room:
                ids.update(m["id"] for m in data["messages"])
        return ids

    def wait_for_ids(self, wanted: set[int], room: str = LOBBY, wait: float = 5.0) -> set[int]:
        deadline = time.monotonic() + wait
        while not wanted <= self.message_ids(room) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.message_ids(room)

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


@contextmanager
def live_clients() -> Iterator[Any]:
    """`open(url, token, **kwargs)` -> LiveClient; every client is closed at the end."""
    opened: list[LiveClient] = []

    def open_client(url: str, token: str | None = None, **kwargs: Any) -> LiveClient:
        client = LiveClient(url, token, **kwargs)
        opened.append(client)
        return client

    try:
        yield open_client
    finally:
        for client in opened:
            client.close()


def refusal(url: str, token: str | None = None, **connect: Any) -> str | None:
    """The server's `connect_error` message for a connection attempt, or None if it was accepted."""
    client = sio.Client(reconnection=False)
    reasons: list[Any] = []
    client.on("connect_error", lambda data=None: reasons.append(data))
    kwargs: dict[str, Any] = {"transports": ["websocket"], "wait_timeout": 10, **connect}
    if token is not None:
        kwargs["auth"] = {"token": token}
    try:
        client.connect(url, **kwargs)
    except sio.exceptions.ConnectionError:
        data = reasons[0] if reasons else None
        return str(data.get("message") if isinstance(data, dict) else data)
    client.disconnect()
    return None
