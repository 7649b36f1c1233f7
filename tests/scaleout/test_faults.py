"""Faults injected for real: a worker killed with -9, Redis stopped, PostgreSQL stopped, SQLite locked.

Redis and PostgreSQL outages use private server instances (tests/support/private.py), never the shared ones.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from conference import __version__
from tests.conftest import require_service
from tests.support.nginx import NGINX, running_nginx
from tests.support.private import REDIS_SERVER, postgres_possible, private_postgres, private_redis
from tests.support.server import free_port, running_server
from tests.support.sockets import LOBBY, LiveClient, live_clients

pytestmark = [pytest.mark.server]


def wait_until(condition: Any, timeout: float = 10, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def send(client: LiveClient, text: str, client_id: str | None = None) -> dict[str, Any]:
    return client.call("chat:send", {"room": LOBBY, "text": text, "client_id": client_id or uuid.uuid4().hex})


def catch_up(client: LiveClient, after_id: int) -> set[int]:
    """What live.js does after a reconnect: join again, then page through chat:history after the last id."""
    assert client.call("join", {"room": LOBBY})["ok"] is True
    ids: set[int] = set()
    while True:
        page = client.call("chat:history", {"room": LOBBY, "after_id": after_id})
        ids.update(m["id"] for m in page["messages"])
        if not page["has_more"]:
            return ids
        after_id = page["messages"][-1]["id"]


def upstream_ports_in_use(ports: list[int]) -> set[int]:
    """Worker ports with an established TCP connection to them (from nginx), read from /proc/net/tcp."""
    used = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, state = int(fields[2].split(":")[1], 16), fields[3]
        if state == "01" and remote_port in ports:
            used.add(remote_port)
    return used


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_worker_killed_clients_reconnect_to_the_other_and_miss_nothing(
        tmp_path: Path, postgres_url: str, redis_url: str, async_mode: str) -> None:
    require_service("nginx", NGINX is not None, "Debian package nginx-light not installed")
    proxy_port = free_port()
    with running_server(tmp_path / "instance", async_mode, workers=2, demo_attendees=2, tokens=True,
                        CONFERENCE_DATABASE_URL=postgres_url, CONFERENCE_MESSAGE_QUEUE=redis_url,
                        CONFERENCE_TRUSTED_PROXY_COUNT="1", CONFERENCE_LIVE_WORKER_TTL="3",
                        CONFERENCE_LIVE_CHAT_RATE_LIMIT="1000/10",
                        CONFERENCE_EXTERNAL_URL=f"http://127.0.0.1:{proxy_port}") as server, \
            running_nginx(tmp_path / "nginx", server.ports, proxy_port) as proxy, live_clients() as open_client:
        reader = open_client(proxy, server.tokens[0], reconnection=True)
        assert reader.call("join", {"room": LOBBY})["ok"] is True
        [victim_port] = upstream_ports_in_use(server.ports)
        survivor = server.ports[1 - server.ports.index(victim_port)]
        sender = open_client(f"http://127.0.0.1:{survivor}", server.tokens[1], headers={"Origin": proxy},
                             transports=["polling"])
        assert sender.call("join", {"room": LOBBY})["ok"] is True
        acked: list[int] = []

        def chat() -> None:
            for index in range(30):
                ack = send(sender, f"während des Absturzes {index}")
                assert ack["ok"] is True, ack
                acked.append(ack["message"]["id"])
                time.sleep(0.05)

        first = send(sender, "vorher")["message"]["id"]
        assert reader.wait_for_ids({first}) == {first}
        sid_before = reader.client.get_sid()
        talking = threading.Thread(target=chat)
        talking.start()
        time.sleep(0.3)
        os.kill(server.worker_pid(server.ports.index(victim_port)), signal.SIGKILL)
        assert wait_until(lambda: reader.client.connected and reader.client.get_sid() not in (None, sid_before))
        last_seen = max(reader.message_ids())
        recovered = catch_up(reader, last_seen)
        talking.join()
        assert len(acked) == 30
        assert set(acked) <= reader.wait_for_ids(set(acked) - recovered) | recovered
        # the supervisor restarts the dead worker on its port
        assert wait_until(lambda: requests.get(f"http://127.0.0.1:{victim_port}/healthz", timeout=1).ok
                          if victim_port in _listening_ports() else False, timeout=20)


def _listening_ports() -> set[int]:
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            ports.add(int(fields[1].split(":")[1], 16))
    return ports


@pytest.mark.postgres
@pytest.mark.redis
def test_redis_outage_messages_stored_then_caught_up_and_live_again(tmp_path: Path, postgres_url: str) -> None:
    require_service("redis-server", REDIS_SERVER is not None, "Debian package redis-server not installed")
    import redis

    with private_redis(tmp_path / "redis") as queue, \
            running_server(tmp_path / "instance", "eventlet", workers=2, demo_attendees=2, tokens=True,
                           CONFERENCE_DATABASE_URL=postgres_url, CONFERENCE_MESSAGE_QUEUE=queue.url,
                           CONFERENCE_LIVE_WORKER_TTL="3") as server, live_clients() as open_client:
        a = open_client(server.worker_url(0), server.tokens[0])
        b = open_client(server.worker_url(1), server.tokens[1])
        user_a = a.call("join", {"room": LOBBY})["user"]["id"]
        assert b.call("join", {"room": LOBBY})["online"] == 2
        queue.stop()
        during = [send(a, f"ohne Redis {i}") for i in range(3)]
        assert [ack["ok"] for ack in during] == [True] * 3  # stored and acknowledged
        missed = {ack["message"]["id"] for ack in during}
        for index in range(2):
            health = requests.get(f"{server.worker_url(index)}/healthz", timeout=5)
            assert (health.status_code, health.json()) == (200, {"status": "degraded", "database": "ok",
                                                                  "queue": "down", "version": __version__})
        assert b.message_ids() & missed == set()  # no live delivery across workers without the queue
        queue.start()  # empty: nothing of the old state survived
        assert b.wait_for_ids(missed, wait=10) >= missed  # replayed by worker 2 once it resubscribed
        after = send(a, "wieder live")["message"]["id"]
        assert after in b.wait_for_ids({after}, wait=5)
        assert wait_until(lambda: all(requests.get(f"{url}/healthz", timeout=5).json()["status"] == "ok"
                                      for url in (server.worker_url(0), server.worker_url(1))))
        # each worker re-published its share of the shared counts into the empty Redis
        client = redis.Redis.from_url(queue.url)
        assert wait_until(lambda: client.hget("conference:live:connections", str(user_a)) == b"1")
        assert wait_until(lambda: a.call("join", {"room": LOBBY})["online"] == 2, timeout=5, step=0.2)


def test_postgres_outage_gives_503_and_error_acks_then_recovers(tmp_path: Path) -> None:
    possible, reason = postgres_possible()
    require_service("private PostgreSQL", possible, reason)
    with private_postgres() as database, \
            running_server(tmp_path / "instance", "eventlet", demo_attendees=2, tokens=True,
                           CONFERENCE_DATABASE_URL=database.url) as server, live_clients() as open_client:
        a = open_client(server.url, server.tokens[0])
        assert a.call("join", {"room": LOBBY})["ok"] is True
        database.stop()
        api = requests.get(f"{server.url}/api/v1/events", timeout=10)
        assert api.status_code == 503 and api.json()["error"] == "unavailable"
        page = requests.get(f"{server.url}/events/digitalkonferenz-2027/", timeout=10)
        assert page.status_code == 503 and "<html" in page.text
        assert requests.get(f"{server.url}/healthz", timeout=10).json()["status"] == "down"
        failed = send(a, "ohne Datenbank", "pg-down-1")
        assert failed["ok"] is False and failed["error"] == "unavailable"
        rejoined = a.call("join", {"room": LOBBY})  # a handler that only reads says so too
        assert rejoined["ok"] is False and rejoined["error"] == "unavailable"
        database.start()
        assert wait_until(lambda: requests.get(f"{server.url}/api/v1/events", timeout=10).status_code == 200)
        assert requests.get(f"{server.url}/healthz", timeout=10).json()["status"] == "ok"
        retried = send(a, "ohne Datenbank", "pg-down-1")
        assert retried["ok"] is True
        history = a.call("chat:history", {"room": LOBBY, "after_id": 0})["messages"]
        assert [m["text"] for m in history] == ["ohne Datenbank"]


def test_sqlite_locked_by_another_writer_gives_try_again_errors(tmp_path: Path) -> None:
    with running_server(tmp_path / "instance", "eventlet", demo_attendees=2, tokens=True) as server, \
            live_clients() as open_client:
        a = open_client(server.url, server.tokens[0])
        assert a.call("join", {"room": LOBBY})["ok"] is True
        http = requests.Session()
        login_page = http.get(f"{server.url}/login", timeout=5).text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page)
        assert csrf
        form = {"email": "teilnehmer00002@demo.invalid", "password": "demo-passwort-2027",
                "csrf_token": csrf.group(1)}
        database = sqlite3.connect(server.instance / "conference.sqlite3", isolation_level=None)
        database.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        try:
            locked = send(a, "gesperrt", "sqlite-1")
            assert locked["ok"] is False and locked["error"] == "unavailable" and locked["message"]
            response = http.post(f"{server.url}/login", data=form, timeout=30, allow_redirects=False)
            assert response.status_code == 503 and "<html" in response.text
            assert requests.get(f"{server.url}/api/v1/events", timeout=10).status_code == 200  # reads go on
        finally:
            database.execute("ROLLBACK")
        rows = database.execute("SELECT count(*) FROM chat_messages WHERE client_id = 'sqlite-1'").fetchone()
        assert rows == (0,)  # nothing half-written
        sessions_before = database.execute("SELECT count(*) FROM login_sessions").fetchone()
        database.close()
        assert send(a, "gesperrt", "sqlite-1")["ok"] is True
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', http.get(f"{server.url}/login", timeout=5).text)
        assert csrf
        form["csrf_token"] = csrf.group(1)
        assert http.post(f"{server.url}/login", data=form, timeout=10, allow_redirects=False).status_code == 302
        with sqlite3.connect(server.instance / "conference.sqlite3") as check:
            assert check.execute("SELECT count(*) FROM chat_messages WHERE client_id = 'sqlite-1'").fetchone() == (1,)
            assert check.execute("SELECT count(*) FROM login_sessions").fetchone()[0] == sessions_before[0] + 1
