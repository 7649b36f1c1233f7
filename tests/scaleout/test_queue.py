"""Two worker processes on PostgreSQL and Redis: chat across workers, shared presence/limits/caps, JSON queue,
and logout/revocation reaching sockets on the other worker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from conference import __version__
from tests.conftest import require_service
from tests.support.server import RunningServer, run_cli, running_server, server_env
from tests.support.services import REDIS_URL, fresh_postgres_database, redis_available
from tests.support.sockets import LOBBY, LiveClient, live_clients, refusal

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """One database for the module's cluster, through psycopg 3 (the driver gevent uses as given)."""
    with fresh_postgres_database("psycopg") as url:
        yield url


@pytest.fixture(scope="module", params=["eventlet", "gevent"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            database_url: str) -> Iterator[RunningServer]:
    available, reason = redis_available()
    require_service("Redis", available, reason)
    import redis

    queue = REDIS_URL.format(db=9 + uuid.uuid4().int % 7)
    redis.Redis.from_url(queue).flushdb()
    instance = tmp_path_factory.mktemp(request.param) / "instance"
    with running_server(instance, request.param, workers=2, demo_attendees=12, tokens=True,
                        CONFERENCE_DATABASE_URL=database_url, CONFERENCE_MESSAGE_QUEUE=queue,
                        CONFERENCE_LIVE_CHAT_RATE_LIMIT="4/60", CONFERENCE_LIVE_MAX_CONNECTIONS_PER_USER="2",
                        CONFERENCE_LIVE_AGGREGATE_INTERVAL="0.2") as server:
        yield server
    redis.Redis.from_url(queue).flushdb()


def send(client: LiveClient, text_: str) -> dict[str, Any]:
    return client.call("chat:send", {"room": LOBBY, "text": text_, "client_id": uuid.uuid4().hex})


def test_chat_reaches_clients_on_every_worker(cluster: RunningServer) -> None:
    with live_clients() as open_client:
        a = open_client(cluster.worker_url(0), cluster.tokens[0])
        b = open_client(cluster.worker_url(1), cluster.tokens[1])
        assert a.call("join", {"room": LOBBY})["ok"] is True
        joined = b.call("join", {"room": LOBBY})
        assert joined["online"] == 2  # a on the other worker counts
        first, second = send(a, "von Worker 1"), send(b, "von Worker 2")
        assert first["ok"] is True and second["ok"] is True
        ids = {first["message"]["id"], second["message"]["id"]}
        assert a.wait_for_ids(ids) == ids
        assert b.wait_for_ids(ids) == ids
        # presence pushed by the worker that saw the join, counted over both workers
        assert any(p == {"room": LOBBY, "online": 2} for p in a.events("presence", wait=3))
        b.close()
        deadline = time.monotonic() + 5
        while a.call("join", {"room": LOBBY})["online"] != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert a.call("join", {"room": LOBBY})["online"] == 1


def test_rate_limit_is_shared_by_the_workers(cluster: RunningServer) -> None:
    token = cluster.tokens[2]
    with live_clients() as open_client:
        on_first, on_second = open_client(cluster.worker_url(0), token), open_client(cluster.worker_url(1), token)
        for client in (on_first, on_second):
            client.call("join", {"room": LOBBY})
        acks = [send(on_first, "eins"), send(on_second, "zwei"), send(on_first, "drei"), send(on_second, "vier")]
        assert [ack["ok"] for ack in acks] == [True] * 4
        refused = send(on_second, "fünf")
        assert refused["ok"] is False and refused["error"] == "rate_limited"


def test_connection_cap_is_shared_by_the_workers(cluster: RunningServer) -> None:
    token = cluster.tokens[3]
    with live_clients() as open_client:
        first = open_client(cluster.worker_url(0), token)
        open_client(cluster.worker_url(1), token)
        for url in (cluster.worker_url(0), cluster.worker_url(1)):
            assert refusal(url, token) is not None  # the token is valid: only the cap refuses it
        first.close()
        time.sleep(0.3)
        assert open_client(cluster.worker_url(1), token).client.connected


def test_queue_and_relay_carry_json_only(cluster: RunningServer) -> None:
    import redis

    client = redis.Redis.from_url(cluster.env["CONFERENCE_MESSAGE_QUEUE"])
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("flask-socketio", "conference:relay")
    seen: list[tuple[bytes, bytes]] = []
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                seen.append((message["channel"], message["data"]))

    thread = threading.Thread(target=collect)
    thread.start()
    try:
        with live_clients() as open_client:
            a = open_client(cluster.worker_url(0), cluster.tokens[4])
            a.call("join", {"room": LOBBY})
            assert send(a, "Ümlaute & <b>JSON</b>")["ok"] is True
            token = cluster.tokens[5]
            open_client(cluster.worker_url(1), token)
            revoke_own_token(cluster.worker_url(0), token)
            time.sleep(1.0)
    finally:
        stop.set()
        thread.join()
        pubsub.close()
    channels = {channel for channel, _data in seen}
    assert channels == {b"flask-socketio", b"conference:relay"}
    for _channel, data in seen:
        assert not data.startswith(b"\x80")  # a pickle would start with the PROTO opcode
        assert isinstance(json.loads(data), dict)
    emits = [json.loads(d) for c, d in seen if c == b"flask-socketio"]
    assert any(e["method"] == "emit" and e["event"] == "chat:message"
               and e["data"][0]["text"] == "Ümlaute & <b>JSON</b>" for e in emits)
    relayed = [json.loads(d) for c, d in seen if c == b"conference:relay"]
    assert [r["signal"] for r in relayed] == ["api_token_revoked"]


def revoke_own_token(url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    tokens = requests.get(f"{url}/api/v1/auth/tokens", headers=headers, timeout=5).json()["tokens"]
    [own] = [t for t in tokens if not t["revoked"]]
    assert requests.delete(f"{url}/api/v1/auth/tokens/{own['id']}", headers=headers, timeout=5).status_code == 204


def wait_disconnected(client: LiveClient, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while client.client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    return not client.client.connected


def test_token_revoked_on_one_worker_disconnects_sockets_on_the_other(cluster: RunningServer) -> None:
    token = cluster.tokens[6]
    with live_clients() as open_client:
        elsewhere = open_client(cluster.worker_url(1), token)
        assert elsewhere.call("join", {"room": LOBBY})["ok"] is True
        revoke_own_token(cluster.worker_url(0), token)
        assert wait_disconnected(elsewhere)
        assert refusal(cluster.worker_url(1), token) is not None


def test_logout_on_one_worker_disconnects_the_browser_socket_on_the_other(cluster: RunningServer) -> None:
    import re

    http = requests.Session()
    login_page = http.get(f"{cluster.worker_url(0)}/login", timeout=5).text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page)
    assert csrf
    response = http.post(f"{cluster.worker_url(0)}/login", timeout=5, data={
        "email": "teilnehmer00008@demo.invalid", "password": "demo-passwort-2027", "csrf_token": csrf.group(1)})
    assert response.ok
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    with live_clients() as open_client:
        browser = open_client(cluster.worker_url(1), headers={"Cookie": cookie})
        assert browser.call("join", {"room": LOBBY})["ok"] is True
        account = http.get(f"{cluster.worker_url(0)}/account", timeout=5).text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', account)
        assert csrf
        http.post(f"{cluster.worker_url(0)}/logout", data={"csrf_token": csrf.group(1)}, timeout=5)
        assert wait_disconnected(browser)


def browser_login(url: str, email: str) -> requests.Session:
    import re

    http = requests.Session()
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', http.get(f"{url}/login", timeout=5).text)
    assert csrf
    response = http.post(f"{url}/login", timeout=5, allow_redirects=False, data={
        "email": email, "password": "demo-passwort-2027", "csrf_token": csrf.group(1)})
    assert response.status_code == 302
    return http


def test_password_change_on_one_worker_closes_the_other_logins_sockets_on_the_other(cluster: RunningServer) -> None:
    import re

    # Both clusters of this module share the database: each changes the password of an attendee of its own.
    number = 10 if cluster.env["CONFERENCE_ASYNC_MODE"] == "eventlet" else 11
    email, token = f"teilnehmer{number:05d}@demo.invalid", cluster.tokens[number - 1]
    here, there = browser_login(cluster.worker_url(0), email), browser_login(cluster.worker_url(0), email)
    with live_clients() as open_client:
        sockets = [open_client(cluster.worker_url(1), headers={"Cookie": "; ".join(
            f"{k}={v}" for k, v in http.cookies.items())}) for http in (here, there)]
        for socket in sockets:
            assert socket.call("join", {"room": LOBBY})["ok"] is True
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                         here.get(f"{cluster.worker_url(0)}/account", timeout=5).text)
        assert csrf
        changed = here.post(f"{cluster.worker_url(0)}/account", timeout=5, allow_redirects=False, data={
            "csrf_token": csrf.group(1), "current_password": "demo-passwort-2027",
            "new_password": "neues-passwort-2027"})
        assert changed.status_code == 302
        assert wait_disconnected(sockets[1])
        assert sockets[0].client.connected and sockets[0].call("join", {"room": LOBBY})["ok"] is True
    me = requests.get(f"{cluster.worker_url(1)}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert me.status_code == 401


def test_health_reports_database_and_queue(cluster: RunningServer) -> None:
    for index in range(2):
        assert requests.get(f"{cluster.worker_url(index)}/healthz", timeout=5).json() == {
            "status": "ok", "database": "ok", "queue": "ok", "version": __version__}


def test_worker_share_of_counts_lives_in_redis(cluster: RunningServer) -> None:
    import redis

    client = redis.Redis.from_url(cluster.env["CONFERENCE_MESSAGE_QUEUE"])
    with live_clients() as open_client:
        a = open_client(cluster.worker_url(0), cluster.tokens[7])
        user_id = str(a.call("join", {"room": LOBBY})["user"]["id"])
        assert client.hget("conference:live:presence:" + LOBBY, user_id) == b"1"
        assert client.hget("conference:live:connections", user_id) == b"1"
        # Both serving workers publish their share with their first heartbeat (which may still be due), and
        # nothing else: the `conference demo` run just before entered no worker (see the test below).
        deadline = time.monotonic() + 5
        while len(client.zrange("conference:live:workers", 0, -1)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(client.zrange("conference:live:workers", 0, -1)) == 2
    time.sleep(0.3)
    assert client.hget("conference:live:presence:" + LOBBY, user_id) is None
    assert client.hget("conference:live:connections", user_id) is None


def test_cli_command_enters_no_live_worker(tmp_path: Path) -> None:
    """`conference demo` publishes an agenda release, which the live layer's receivers hear. A CLI process has no
    sockets: it must not build the live state, whose heartbeat would enter it in Redis as a worker that never
    beats again (a stale entry until LIVE_WORKER_TTL). A Redis of its own: any other server's worker in a
    shared one would count."""
    import redis

    from tests.support.private import private_redis

    instance = tmp_path / "instance"
    instance.mkdir()
    with private_redis(tmp_path / "redis") as queue:
        env = server_env(instance, "eventlet", CONFERENCE_MESSAGE_QUEUE=queue.url,
                         CONFERENCE_DATABASE_URL=f"sqlite:///{instance / 'demo.sqlite3'}")
        result = run_cli(["demo", "--attendees", "2"], env)
        assert "orga@demo.invalid" in result.stdout
        client = redis.Redis.from_url(queue.url)
        assert client.ping()
        assert client.keys("*workers*") == []


def test_metrics_add_up_over_the_workers(cluster: RunningServer) -> None:
    """Either worker answers /metrics for both (prometheus-client's multi-process mode)."""
    from tests.core.test_metrics import scrape, value

    with live_clients() as open_client:
        a = open_client(cluster.worker_url(0), cluster.tokens[2])
        b = open_client(cluster.worker_url(1), cluster.tokens[3])
        joined = [a.call("join", {"room": LOBBY}), b.call("join", {"room": LOBBY})]
        assert all(ack["ok"] for ack in joined)
        for url in (cluster.worker_url(0), cluster.worker_url(1)):
            figures = scrape(url)
            assert value(figures, "conference_socket_connections") >= 2
            assert value(figures, "conference_live_events_total", event="join", outcome="ok") >= 2
        pids = {labels for name, labels in scrape(cluster.worker_url(0)) if name == "conference_live_rooms"}
        assert len(pids) == 1  # read at scrape time: the answering worker's own rooms, labelled with its pid
