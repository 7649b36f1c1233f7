"""Every library seam turned off through its fence (version out of range, or a name gone) in a real server:
one log line says so and the library's public path serves correctly (chat complete and in order for fast and
stalled readers, uploads intact, websockets or long-polling working)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import requests

from tests.live import test_direct_writes
from tests.presentations import test_upload_server
from tests.support.server import running_server
from tests.support.sockets import LOBBY, live_clients, refusal

pytestmark = pytest.mark.server


def server_log(instance: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(instance.glob("server-*.log")))


def chat_in_order(instance: Path, async_mode: str, **env: str) -> str:
    """The direct-writes scenario (2,500 messages, a fast and a stalled reader); returns the server log."""
    with running_server(instance, async_mode, demo_attendees=3, tokens=True,
                        CONFERENCE_LIVE_CHAT_RATE_LIMIT="100000/10", CONFERENCE_LIVE_LARGE_ROOM="2", **env) as server:
        port = int(server.url.rsplit(":", 1)[1])
        stored, fast, stalled, sender = asyncio.run(test_direct_writes.scenario(port, server.tokens))
        time.sleep(0.2)
    assert fast == stored and stalled == stored and sender == stored
    return server_log(instance)


def test_eventlet_with_unmasking_direct_writes_and_heap_keeper_out_of_range(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SEAMS_AWAY", "fast websocket unmasking:version,direct websocket broadcasts:version,"
                                          "heap keeper:version,indexed rooms:version")
    log = chat_in_order(tmp_path / "instance", "eventlet")
    assert "fast websocket unmasking (eventlet) is off: eventlet 0.0 is outside the tested range" in log
    assert "direct websocket broadcasts (python-socketio, python-engineio) is off: python-engineio 0.0 is " \
           "outside the tested range" in log
    assert "heap keeper (CPython's generational collector) is off" in log
    assert "indexed rooms (python-socketio) is off: python-socketio 0.0 is outside the tested range" in log
    assert log.count(" is off: ") == 4  # one line each, nothing else off


def test_gevent_with_a_name_of_direct_writes_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SEAMS_AWAY", "direct websocket broadcasts:names")
    log = chat_in_order(tmp_path / "instance", "gevent")
    assert "direct websocket broadcasts (python-socketio, python-engineio) is off: " \
           "conference.serving.fence has no name_the_library_dropped" in log
    assert log.count(" is off: ") == 1


def test_the_kill_switch_turns_direct_writes_off(tmp_path: Path) -> None:
    log = chat_in_order(tmp_path / "instance", "eventlet", CONFERENCE_LIVE_DIRECT_WRITES="false")
    assert "direct websocket broadcasts: off (CONFERENCE_LIVE_DIRECT_WRITES=false)" in log
    assert " is off: " not in log


def test_gevent_without_the_one_writer_serves_long_polling_only(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SEAMS_AWAY", "whole websocket frames:version")
    instance = tmp_path / "instance"
    with running_server(instance, "gevent", demo_attendees=2, tokens=True) as server, \
            live_clients() as open_client:
        assert refusal(server.url, server.tokens[0]) is not None  # no websocket: a cut frame never goes out
        first = open_client(server.url, server.tokens[0], transports=["polling"])
        second = open_client(server.url, server.tokens[1], transports=["polling"])
        for client in (first, second):
            assert client.call("join", {"room": LOBBY})["ok"] is True
        sent = [first.call("chat:send", {"room": LOBBY, "text": f"Nachricht {i}", "client_id": f"p{i}"})
                ["message"]["id"] for i in range(20)]
        assert second.wait_for_ids(set(sent)) == set(sent)
        order = [data["id"] for event, data in second.received if event == "chat:message"]
        order += [m["id"] for event, data in second.received if event == "chat:messages" for m in data["messages"]]
        assert sorted(order) == sent and len(order) == len(sent)
    log = server_log(instance)
    assert "whole websocket frames (simple-websocket) is off: simple-websocket 0.0 is outside" in log
    assert "websockets off (long-polling only)" in log


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_uploads_intact_without_the_multipart_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        async_mode: str) -> None:
    monkeypatch.setenv("TEST_SEAMS_AWAY", "multipart fast path:version")
    test_upload_server.test_upload_with_declared_length_and_chunked(tmp_path, async_mode)
    log = server_log(tmp_path / "instance")
    assert "multipart fast path (werkzeug) is off: werkzeug 0.0 is outside the tested range" in log


def test_health_still_answers_with_every_seam_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SEAMS_AWAY", "unmasking:names,broadcasts:names,heap keeper:version,indexed rooms:names")
    with running_server(tmp_path / "instance", "eventlet", demo_attendees=None) as server:
        assert requests.get(f"{server.url}/", timeout=10).status_code == 200
