"""Broadcast frames written straight to idle websockets (eventlet and gevent) keep every message, in order,
for fast and for stalled readers alike."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.security.drill_client import open_client
from tests.support.server import running_server

pytestmark = pytest.mark.server

LOBBY = "lobby:digitalkonferenz-2027"
MESSAGES = 2500  # ~5 MB: more than the kernel buffers for a stalled reader


async def until(condition, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)


async def scenario(port: int, tokens: list[str]) -> tuple[list[int], list[int], list[int], list[int]]:
    sender, fast = await open_client(port, tokens[0], LOBBY), await open_client(port, tokens[1], LOBBY)
    stalled = await open_client(port, tokens[2], LOBBY, receive_buffer=4096)
    assert stalled.transport is not None
    stalled.transport.pause_reading()
    stored = []
    for first in range(0, MESSAGES, 50):  # 50 in flight at a time
        acks = [sender.send_call("chat:send", {"room": LOBBY, "text": f"{index:04d} " + "x" * 1990,
                                               "client_id": f"direct-{index}"}) for index in range(first, first + 50)]
        for ack in await asyncio.gather(*(asyncio.wait_for(a, 30) for a in acks)):
            reply = json.loads(ack)[0]
            assert reply["ok"] is True, reply
            stored.append(reply["message"]["id"])
    stored.sort()
    await until(lambda: len(fast.live_ids) >= MESSAGES, 15)
    fast_ids_while_stalled = list(fast.live_ids)
    stalled_before = len(stalled.live_ids)
    stalled.transport.resume_reading()
    await until(lambda: len(stalled.live_ids) >= MESSAGES, 20)
    for client in (sender, fast, stalled):
        client.close()
    assert stalled_before < MESSAGES  # it really was stalled: the server could not write everything at once
    return stored, fast_ids_while_stalled, stalled.live_ids, sender.live_ids


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_every_reader_gets_every_message_once_in_order(tmp_path: Path, async_mode: str) -> None:
    with running_server(tmp_path / "instance", async_mode, demo_attendees=3, tokens=True,
                        CONFERENCE_LIVE_CHAT_RATE_LIMIT="100000/10", CONFERENCE_LIVE_LARGE_ROOM="2") as server:
        port = int(server.url.rsplit(":", 1)[1])
        stored, fast, stalled, sender = asyncio.run(scenario(port, server.tokens))
    assert fast == stored  # all of them while another reader was stalled, in the order they were stored
    assert stalled == stored  # the stalled reader too, once it read again: nothing lost, doubled or reordered
    assert sender == stored
