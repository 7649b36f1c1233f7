"""The live protocol against a real server process under eventlet and gevent (python-socketio over websockets)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio as sio

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFERENCE = str(Path(sys.executable).parent / "conference")
SLUG = "digitalkonferenz-2027"
LOBBY = f"lobby:{SLUG}"

pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, mode: str, tmp: Path) -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CONFERENCE_INSTANCE_PATH": str(tmp / "instance"), "CONFERENCE_ASYNC_MODE": mode,
                    "CONFERENCE_EXTERNAL_URL": self.url, "CONFERENCE_LIVE_CHAT_RATE_LIMIT": "20/10",
                    "PYTHONWARNINGS": "ignore"}
        self.env.pop("CONFERENCE_DATABASE_URL", None)
        token_file = tmp / "tokens.txt"
        subprocess.run([CONFERENCE, "demo", "--attendees", "6", "--token-file", str(token_file)], env=self.env,
                       check=True, capture_output=True, cwd=PROJECT_ROOT, timeout=120)
        self.tokens = token_file.read_text().split()
        self.log = (tmp / "server.log").open("w")
        self.process = subprocess.Popen([CONFERENCE, "run", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server ({mode}) did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module", params=["eventlet", "gevent"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(request.param, tmp_path_factory.mktemp(request.param))
    yield running
    running.stop()


class Client:
    """A python-socketio client that records the events it receives."""

    def __init__(self, server: Server, token: str | None = None, **connect: Any) -> None:
        self.client = sio.Client(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.client.on("*", self._record)
        kwargs: dict[str, Any] = {"transports": ["websocket"], "wait_timeout": 5}
        if token is not None:
            kwargs["auth"] = {"token": token}
        kwargs.update(connect)
        self.client.connect(server.url, **kwargs)

    def _record(self, event: str, data: Any = None) -> None:
        with self.lock:
            self.received.append((event, data))

    def call(self, event: str, data: Any) -> Any:
        return self.client.call(event, data, timeout=5)

    def events(self, name: str, *, wait: float = 2.0, count: int = 1) -> list[Any]:
        deadline = time.monotonic() + wait
        while True:
            with self.lock:
                found = [data for event, data in self.received if event == name]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture
def clients(server: Server) -> Iterator[Any]:
    opened: list[Client] = []

    def _open(token: str | None = None, **kwargs: Any) -> Client:
        client = Client(server, token, **kwargs)
        opened.append(client)
        return client

    yield _open
    for client in opened:
        client.close()


def test_refuses_connections_without_credentials(server: Server) -> None:
    for auth in (None, {"token": "cft_wrong"}):
        client = sio.Client(reconnection=False)
        reasons: list[Any] = []
        client.on("connect_error", reasons.append)
        with pytest.raises(sio.exceptions.ConnectionError):
            client.connect(server.url, transports=["websocket"], auth=auth, wait_timeout=5)
        assert reasons == [{"message": "unauthorized"}]


def test_chat_round_trip_idempotent_and_history(server: Server, clients: Any) -> None:
    a, b = clients(server.tokens[0]), clients(server.tokens[1])
    assert a.call("join", {"room": LOBBY})["ok"] is True
    assert b.call("join", {"room": LOBBY})["ok"] is True
    client_id = f"{server.mode}-1"
    first = a.call("chat:send", {"room": LOBBY, "text": "Hallo aus dem Test", "client_id": client_id})
    assert first["ok"] is True and first["message"]["text"] == "Hallo aus dem Test"
    again = a.call("chat:send", {"room": LOBBY, "text": "doppelt", "client_id": client_id})
    assert again == first
    assert b.events("chat:message") == [first["message"]]
    history = b.call("chat:history", {"room": LOBBY, "after_id": first["message"]["id"] - 1})
    assert history["messages"] == [first["message"]]
    time.sleep(0.2)
    assert len(b.events("chat:message")) == 1  # the resend was not shown twice


def test_bad_input_changes_nothing(server: Server, clients: Any) -> None:
    a, b = clients(server.tokens[2]), clients(server.tokens[3])
    for client in (a, b):
        client.call("join", {"room": LOBBY})
    before = b.call("chat:history", {"room": LOBBY, "after_id": 0})["messages"]
    cases = [({"room": LOBBY, "text": "x" * 2001, "client_id": "big"}, "too_long"),
             ({"room": LOBBY, "text": 5, "client_id": "t"}, "invalid"),
             ({"room": "lobby:unbekannt", "text": "hi", "client_id": "u"}, "unknown_room"),
             ({"room": f"session:{10**9}", "text": "hi", "client_id": "u"}, "unknown_room")]
    for payload, code in cases:
        ack = a.call("chat:send", payload)
        assert ack["ok"] is False and ack["error"] == code
    assert a.call("chat:send", "kein Objekt")["error"] == "invalid_payload"
    assert a.call("chat:nonsense", {"x": 1})["error"] == "unknown_event"
    time.sleep(0.2)
    assert b.events("chat:message", wait=0) == []
    assert b.call("chat:history", {"room": LOBBY, "after_id": 0})["messages"] == before


def test_reconnect_catches_up_with_after_id(server: Server, clients: Any) -> None:
    sender, reader = clients(server.tokens[4]), clients(server.tokens[5])
    sender.call("join", {"room": LOBBY})
    seen = reader.call("join", {"room": LOBBY})["history"]
    last_id = seen[-1]["id"] if seen else 0
    reader.close()
    sent = [sender.call("chat:send", {"room": LOBBY, "text": f"verpasst {i}", "client_id": f"{server.mode}-m{i}"})
            ["message"]["id"] for i in range(3)]
    again = clients(server.tokens[5])
    again.call("join", {"room": LOBBY})
    caught_up = again.call("chat:history", {"room": LOBBY, "after_id": last_id})["messages"]
    assert [m["id"] for m in caught_up][-3:] == sent


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_token_socket_from_a_foreign_origin_accepted_cookie_socket_refused(server: Server, clients: Any,
                                                                        transport: str) -> None:
    """The Origin rule binds browser logins only (docs/protocol.md): a dashboard or a bot in a browser extension
    on another site connects with its API token; the same foreign Origin with a login cookie is refused."""
    foreign = {"Origin": "https://dashboard.example"}
    bot = clients(server.tokens[5], headers=foreign, transports=[transport])
    assert bot.call("join", {"room": LOBBY})["ok"] is True
    http = requests.Session()
    page = http.get(f"{server.url}/login", timeout=5).text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf
    assert http.post(f"{server.url}/login", data={"email": "teilnehmer00002@demo.invalid",
                                                   "password": "demo-passwort-2027", "csrf_token": csrf.group(1)},
                     timeout=5).ok
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    with pytest.raises(sio.exceptions.ConnectionError):
        clients(headers={"Cookie": cookie, **foreign}, transports=[transport])
    assert clients(headers={"Cookie": cookie}, transports=[transport]).call("join", {"room": LOBBY})["ok"] is True


def test_browser_login_session_and_logout(server: Server, clients: Any) -> None:
    http = requests.Session()
    page = http.get(f"{server.url}/login", timeout=5).text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf
    response = http.post(f"{server.url}/login", data={"email": "teilnehmer00001@demo.invalid",
                                                      "password": "demo-passwort-2027", "csrf_token": csrf.group(1)},
                         timeout=5)
    assert response.ok
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    with pytest.raises(sio.exceptions.ConnectionError):  # a page on another site may not use the cookie
        clients(headers={"Cookie": cookie, "Origin": "https://evil.example"}, transports=["polling"])
    browser = clients(headers={"Cookie": cookie})  # websocket-client sends the server's own Origin
    assert browser.call("join", {"room": LOBBY})["ok"] is True
    account = http.get(f"{server.url}/account", timeout=5).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', account)
    assert token
    http.post(f"{server.url}/logout", data={"csrf_token": token.group(1)}, timeout=5)
    deadline = time.monotonic() + 5
    while browser.client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not browser.client.connected
