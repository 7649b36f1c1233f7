"""The shipped nginx configuration in front of two workers on PostgreSQL and Redis."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.support.nginx import NGINX, running_nginx
from tests.support.server import running_server

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
                                                                       "queue": "ok"}
        with running_nginx(tmp_path / "nginx", server.ports) as proxy:
            assert get_json(f"{proxy}/healthz")["status"] == "ok"
            events = get_json(f"{proxy}/api/v1/events")["events"]
            assert [e["slug"] for e in events] == ["digitalkonferenz-2027"]
            with urllib.request.urlopen(f"{proxy}/", timeout=10) as response:  # noqa: S310
                assert "Digitalkonferenz Revier 2027" in response.read().decode()
