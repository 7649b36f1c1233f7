"""`conference run` really serves, under eventlet and under gevent."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.support.server import running_server


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_conference_run_serves_demo(tmp_path: Path, async_mode: str) -> None:
    with running_server(tmp_path / "instance", async_mode) as server:
        with urllib.request.urlopen(f"{server.url}/") as response:  # noqa: S310 - loopback
            html = response.read().decode()
            assert response.url.endswith("/events/digitalkonferenz-2027/")
        assert "Digitalkonferenz Revier 2027" in html
        with urllib.request.urlopen(f"{server.url}/api/v1/events") as response:  # noqa: S310
            assert json.load(response)["events"][0]["slug"] == "digitalkonferenz-2027"
        log = server.log.read_text()
        assert f"({async_mode})" in log
        server.process.terminate()
        assert server.process.wait(timeout=10) is not None
