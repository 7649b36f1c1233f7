"""A server that could not install its websocket message limit serves long-polling only: the browser chats on."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import EVENT, WATCHES, login_in_browser
from tests.support.server import RunningServer, running_server

pytestmark = [pytest.mark.server, pytest.mark.browser]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """eventlet without the names the limit needs (removed before the server starts): websockets are off."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(
        "import eventlet.websocket\ndel eventlet.websocket.RFC6455WebSocket.Message\n")
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    instance = tmp_path_factory.mktemp("fallback") / "instance"
    with running_server(instance, "eventlet", demo_attendees=2, PYTHONPATH=path) as server:
        yield server


def test_browser_chats_over_long_polling_when_websockets_are_off(new_page: Any, live_server: RunningServer) -> None:
    from playwright.sync_api import expect

    page = new_page()
    opened: list[str] = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    login_in_browser(page, live_server.url, "teilnehmer00001@demo.invalid")
    page.goto(f"{live_server.url}{EVENT}/lobby")
    text = f"Über Long-Polling {uuid.uuid4().hex[:8]}"
    box = page.locator("[data-live-room] textarea, [data-live-room] input[type=text]").first
    box.fill(text)
    box.press("Enter")
    expect(page.locator("[data-live-messages] li", has_text=text)).to_be_visible()
    assert opened, "the client tried a websocket first"
    assert "serving Socket.IO over long-polling only" in live_server.log.read_text()
    watch = WATCHES[id(page)]  # the refused websocket attempt is the point of this test, not a page fault
    watch.console_errors = [line for line in watch.console_errors if "WebSocket connection" not in line]
