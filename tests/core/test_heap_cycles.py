"""A closed connection leaves no garbage cycles, so the server needs no full collection while people are there
(core/heap.py). Counted on a real server: what the idle reclaim frees after clients connected, chatted, asked,
voted, reacted, sent bad payloads and left. Before the fixes each connection left about 42 such objects."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.server import RunningServer, running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from raw_socketio import RawSocketIOClient  # noqa: E402 - the light client of the benchmarks

LOBBY = "lobby:digitalkonferenz-2027"
CONNECTIONS = 60
FREED = re.compile(r"heap reclaim: (\d+) garbage objects freed")


async def visit(port: int, token: str) -> None:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(lambda: RawSocketIOClient(token), "127.0.0.1", port)
    assert await asyncio.wait_for(client.connected, 30)
    calls = [("join", {"room": LOBBY}),
             ("chat:send", {"room": LOBBY, "text": "Hallo", "client_id": uuid.uuid4().hex}),
             ("chat:send", {"room": LOBBY, "text": ""}),  # refused
             ("chat:history", {"room": LOBBY, "after_id": 0}),
             ("react", {"room": LOBBY, "reaction": "heart"}),
             ("qa:vote", {"question_id": 999_999}),  # not found
             ("no-such-event", {"x": 1}),
             ("join", {"room": "session:999999"}),  # not found
             ("leave", {"room": LOBBY})]
    for event, data in calls:
        await asyncio.wait_for(client.send_call(event, data), 30)
    await asyncio.sleep(2.5)  # past the keeper's freeze (every second): the connection's objects are frozen
    client.close()


async def visits(port: int, tokens: list[str]) -> None:
    await asyncio.gather(*(visit(port, tokens[i % len(tokens)]) for i in range(CONNECTIONS)))


def reclaims(server: RunningServer) -> list[int]:
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    return [int(found.group(1)) for line in lines if (found := FREED.search(line["message"]))]


def wait_for_reclaim(server: RunningServer, after: int, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(found := reclaims(server)) <= after and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_closed_connections_leave_no_garbage_cycles(tmp_path: Path, async_mode: str) -> None:
    with running_server(tmp_path / "instance", async_mode, demo_attendees=20, tokens=True,
                        CONFERENCE_LOG_FORMAT="json", CONFERENCE_HEAP_RECLAIM_EVERY="1",
                        CONFERENCE_LIVE_MAX_CONNECTIONS_PER_USER="20", CONFERENCE_LIVE_JOIN_RATE_LIMIT="1000/10",
                        CONFERENCE_LIVE_CHAT_RATE_LIMIT="1000/10",
                        CONFERENCE_LIVE_ACTION_RATE_LIMIT="1000/10") as server:
        port = server.ports[0]
        asyncio.run(visits(port, server.tokens[:3]))  # first use of every path (imports, caches) paid here
        before = len(wait_for_reclaim(server, after=len(reclaims(server))))
        asyncio.run(visits(port, server.tokens))
        found = wait_for_reclaim(server, after=before)
        assert len(found) > before, "no reclaim after the clients left (the server should be idle)"
        freed = max(found[before:])
        assert freed < CONNECTIONS, f"{freed} garbage objects after {CONNECTIONS} connections"
