"""`/metrics`: who may read it, and that the figures move with real traffic on a real server."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conference.core.metrics import route_class
from tests.support.server import RunningServer, running_server
from tests.support.sockets import LOBBY, live_clients


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    request = urllib.request.Request(f"{url}/metrics", headers=headers or {})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.headers["Cache-Control"] == "no-store"
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(figures: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in figures.items() if n == name and wanted <= set(ls))


def status_of(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/metrics", headers=headers),  # noqa: S310
                                    timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_route_classes_are_a_small_fixed_set() -> None:
    assert route_class("GET", "/static/js/live.js") == "static"
    assert route_class("GET", "/api/v1/events/x/sessions/12") == "api"
    assert route_class("GET", "/events/x/calendar/secret-token.ics") == "export"
    assert route_class("POST", "/events/x/sessions/3/slides") == "upload"
    assert route_class("POST", "/api/v1/sessions/3/presentations") == "upload"
    assert route_class("GET", "/events/x/presentations/3/download") == "download"
    assert route_class("GET", "/events/x/sessions/3") == "page"
    assert route_class("POST", "/login") == "form"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    instance = tmp_path_factory.mktemp("metrics") / "instance"
    with running_server(instance, "eventlet", demo_attendees=3, tokens=True,
                        CONFERENCE_METRICS_TOKEN="metrics-secret-123", CONFERENCE_LOG_FORMAT="json") as running:
        yield running


@pytest.mark.server
def test_only_loopback_or_the_token_may_read(server: RunningServer) -> None:
    assert status_of(server.url, {}) == 200  # straight from this machine
    # Through a proxy the loopback address is the proxy's: refused unless the token comes along.
    assert status_of(server.url, {"X-Forwarded-For": "203.0.113.9"}) == 404
    assert status_of(server.url, {"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer wrong"}) == 404
    assert status_of(server.url, {"X-Forwarded-For": "203.0.113.9",
                                  "Authorization": "Bearer metrics-secret-123"}) == 200


@pytest.mark.server
def test_figures_follow_real_traffic(server: RunningServer) -> None:
    with urllib.request.urlopen(f"{server.url}/events/digitalkonferenz-2027/agenda", timeout=10):  # noqa: S310
        pass
    before = scrape(server.url)
    with live_clients() as open_client:
        sender, reader = open_client(server.url, server.tokens[0]), open_client(server.url, server.tokens[1])
        assert sender.call("join", {"room": LOBBY})["ok"] and reader.call("join", {"room": LOBBY})["ok"]
        ack = sender.call("chat:send", {"room": LOBBY, "text": "Hallo Metriken", "client_id": uuid.uuid4().hex})
        assert ack["ok"] is True
        refused = sender.call("chat:send", {"room": LOBBY, "text": "", "client_id": uuid.uuid4().hex})
        assert refused["ok"] is False
        reader.wait_for_ids({ack["message"]["id"]})
        during = scrape(server.url)
    assert value(during, "conference_socket_connections") == 2
    assert value(during, "conference_live_events_total", event="chat_send", outcome="ok") \
        - value(before, "conference_live_events_total", event="chat_send", outcome="ok") == 1
    assert value(during, "conference_live_events_total", event="chat_send", outcome=refused["error"]) == 1
    assert value(during, "conference_chat_deliveries_total") - value(before, "conference_chat_deliveries_total") == 2
    assert value(during, "conference_chat_delivery_seconds_count") >= 1
    assert value(during, "conference_http_request_seconds_count", route_class="page") >= 1
    assert value(during, "conference_event_loop_lag_seconds_count") \
        > value(before, "conference_event_loop_lag_seconds_count") > 0  # the probe wakes every 10 ms
    assert value(during, "conference_live_rooms") >= 1
    assert any(name == "conference_db_pool_connections" for name, _ in during)
    deadline = time.monotonic() + 5
    while value(scrape(server.url), "conference_socket_connections") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert value(scrape(server.url), "conference_socket_connections") == 0


def test_metrics_path_is_refused_by_the_shipped_nginx_config() -> None:
    config = (Path(__file__).resolve().parents[2] / "deploy" / "nginx-conference.conf").read_text()
    assert "location = /metrics" in config


@pytest.mark.server
def test_json_log_lines_carry_the_request_id(server: RunningServer) -> None:
    """A line logged during a request names it; the response says the same id (the proxy's, when sent)."""
    import json

    # A token request through a local proxy that is not trusted logs a warning (once): during this request.
    response = requests.post(f"{server.url}/api/v1/auth/token", json={"email": "x@example.org", "password": "x"},
                             headers={"X-Request-Id": "trace-4711-abcd", "X-Forwarded-For": "198.51.100.7"},
                             timeout=10)
    assert response.status_code in (400, 401) and response.headers["X-Request-Id"] == "trace-4711-abcd"
    invented = requests.get(f"{server.url}/login", headers={"X-Request-Id": "bad id"}, timeout=10)
    assert len(invented.headers["X-Request-Id"]) == 32
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
        if any(line.get("request_id") == "trace-4711-abcd" for line in lines):
            break
        time.sleep(0.1)
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line.get("request_id") == "trace-4711-abcd" and "proxy" in line["message"] for line in lines)
