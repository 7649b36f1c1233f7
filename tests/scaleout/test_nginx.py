"""The shipped nginx configuration in front of two workers on PostgreSQL and Redis."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from conference import __version__
from tests.conftest import require_service
from tests.support.nginx import NGINX, running_nginx
from tests.support.server import free_port, running_server
from tests.support.sockets import LOBBY, live_clients

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.redis]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
        return json.load(response)


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_two_workers_behind_nginx(tmp_path: Path, postgres_url: str, redis_url: str, async_mode: str) -> None:
    require_service("nginx", NGINX is not None, "Debian package nginx-light not installed")
    with running_server(tmp_path / "instance", async_mode, workers=2, CONFERENCE_DATABASE_URL=postgres_url,
                        CONFERENCE_MESSAGE_QUEUE=redis_url, CONFERENCE_TRUSTED_PROXY_COUNT="1") as server:
        for index in range(2):
            assert get_json(f"{server.worker_url(index)}/healthz") == {"status": "ok", "database": "ok",
                                                                       "queue": "ok", "version": __version__}
        with running_nginx(tmp_path / "nginx", server.ports) as proxy:
            assert get_json(f"{proxy}/healthz")["status"] == "ok"
            events = get_json(f"{proxy}/api/v1/events")["events"]
            assert [e["slug"] for e in events] == ["digitalkonferenz-2027"]
            with urllib.request.urlopen(f"{proxy}/", timeout=10) as response:  # noqa: S310
                assert "Digitalkonferenz Revier 2027" in response.read().decode()


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_chat_through_nginx_and_across_workers(tmp_path: Path, postgres_url: str, redis_url: str,
                                               async_mode: str) -> None:
    """websocket and long-polling clients through nginx, plus one client directly on each worker."""
    require_service("nginx", NGINX is not None, "Debian package nginx-light not installed")
    proxy_port = free_port()  # the public address (EXTERNAL_URL) is known before the workers start
    with running_server(tmp_path / "instance", async_mode, workers=2, demo_attendees=4, tokens=True,
                        CONFERENCE_DATABASE_URL=postgres_url.replace("+psycopg2", "+psycopg"),
                        CONFERENCE_MESSAGE_QUEUE=redis_url, CONFERENCE_TRUSTED_PROXY_COUNT="1",
                        CONFERENCE_EXTERNAL_URL=f"http://127.0.0.1:{proxy_port}") as server, \
            running_nginx(tmp_path / "nginx", server.ports, proxy_port) as proxy, live_clients() as open_client:
        clients = [open_client(proxy, server.tokens[0]),
                   open_client(proxy, server.tokens[1], transports=["polling"]),
                   # straight to each worker, with the Origin of a page served through the proxy
                   open_client(server.worker_url(0), server.tokens[2], headers={"Origin": proxy},
                               transports=["polling"]),
                   open_client(server.worker_url(1), server.tokens[3], headers={"Origin": proxy},
                               transports=["polling"])]
        for client in clients:
            assert client.call("join", {"room": LOBBY})["ok"] is True
        sent = set()
        for index, client in enumerate(clients):
            ack = client.call("chat:send", {"room": LOBBY, "text": f"Nachricht {index}", "client_id": f"n{index}"})
            assert ack["ok"] is True
            sent.add(ack["message"]["id"])
        for client in clients:
            assert client.wait_for_ids(sent) == sent
