"""Presence recorded by the real server (eventlet and gevent): sockets join, the background sampler writes
their minutes, a second tab adds nothing, and nothing is written for a socket that never joins a room."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.server import running_server
from tests.support.sockets import live_clients

SLUG = "digitalkonferenz-2027"


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_server_samples_presence_once_per_person(tmp_path: Path, async_mode: str) -> None:
    instance = tmp_path / "instance"
    with running_server(instance, async_mode, demo_attendees=3, tokens=True,
                        CONFERENCE_ATTENDANCE_SAMPLE_SECONDS="0.5") as server, live_clients() as open_client:
        first, second, third = server.tokens[:3]
        tabs = [open_client(server.url, first), open_client(server.url, first), open_client(server.url, second)]
        for tab in tabs:
            assert tab.call("join", {"room": f"lobby:{SLUG}"})["ok"] is True
        open_client(server.url, third)  # connected, in no room: not present anywhere
        engine = create_engine(f"sqlite:///{instance / 'conference.sqlite3'}")
        try:
            deadline = time.monotonic() + 15
            people: list[int] = []
            while time.monotonic() < deadline:
                with engine.connect() as connection:
                    people = list(connection.execute(text(
                        "SELECT user_id FROM attendance_minutes WHERE room = :room GROUP BY user_id, minute"),
                        {"room": f"lobby:{SLUG}"}).scalars())
                if len(set(people)) >= 2:
                    break
                time.sleep(0.2)
            assert len(set(people)) == 2  # two people, whatever the number of tabs
            assert len(people) in (2, 4)  # one row per person and minute (4 if a minute boundary passed)
        finally:
            engine.dispose()
