"""PostgreSQL with the cooperative driver: a query waiting for a lock does not stall the worker's event loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from conference import __version__
from tests.support.server import running_server
from tests.support.sockets import LOBBY, live_clients

pytestmark = [pytest.mark.server, pytest.mark.postgres]


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_waiting_query_does_not_block_the_event_loop(tmp_path: Path, postgres_url: str, async_mode: str) -> None:
    url = postgres_url.replace("+psycopg2", "+psycopg")  # eventlet maps it to psycopg2 + psycogreen
    with running_server(tmp_path / "instance", async_mode, demo_attendees=2, tokens=True,
                        CONFERENCE_DATABASE_URL=url) as server:
        locker = create_engine(postgres_url)
        results: list[int] = []
        with locker.connect() as connection:
            connection.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))  # held until rollback
            waiting = threading.Thread(target=lambda: results.append(
                requests.get(f"{server.url}/api/v1/events", timeout=30).status_code))
            waiting.start()
            time.sleep(0.5)
            assert waiting.is_alive()  # the request waits for the lock inside PostgreSQL
            timings = []
            for _ in range(5):
                began = time.monotonic()
                health = requests.get(f"{server.url}/healthz", timeout=5)
                timings.append(time.monotonic() - began)
                assert health.json() == {"status": "ok", "database": "ok", "queue": "none", "version": __version__}
            assert max(timings) < 0.5, timings
            assert waiting.is_alive()
            connection.rollback()
        waiting.join(timeout=10)
        locker.dispose()
        assert results == [200]


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_chat_end_to_end_on_postgres(tmp_path: Path, postgres_url: str, async_mode: str) -> None:
    url = postgres_url.replace("+psycopg2", "+psycopg")
    with running_server(tmp_path / "instance", async_mode, demo_attendees=2, tokens=True,
                        CONFERENCE_DATABASE_URL=url) as server, live_clients() as open_client:
        a, b = open_client(server.url, server.tokens[0]), open_client(server.url, server.tokens[1])
        for client in (a, b):
            assert client.call("join", {"room": LOBBY})["ok"] is True
        ack = a.call("chat:send", {"room": LOBBY, "text": "Grüße aus PostgreSQL", "client_id": "pg-1"})
        assert ack["ok"] is True
        assert b.wait_for_ids({ack["message"]["id"]}) == {ack["message"]["id"]}
        again = a.call("chat:send", {"room": LOBBY, "text": "nochmal", "client_id": "pg-1"})
        assert again == ack  # idempotent resend: the unique constraint works on PostgreSQL too
        history = b.call("chat:history", {"room": LOBBY, "after_id": 0})["messages"]
        assert [m["text"] for m in history] == ["Grüße aus PostgreSQL"]
