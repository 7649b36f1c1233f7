"""The schedule widget on another site: a page served from a second origin shows the released programme and the
now/next list through the public API (CORS), with every text escaped and no draft."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_PASSWORD, SLUG, WATCHES

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "widget-example.html"
MARK = uuid.uuid4().hex[:8]
HOSTILE = f'<img src=x onerror="window.__widgetXss=1">Gefährlich {MARK} & <b>fett</b>'
DRAFT = f"Unveröffentlichter Entwurf {MARK}"


def _api(base: str, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    request = urllib.request.Request(f"{base}{path}", method=method,  # noqa: S310 - the test server's http URL
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - likewise
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None


@pytest.fixture(scope="module")
def programme(live_server: Any) -> dict[str, Any]:
    """A released session whose title is markup, then a draft made after the release (never shown)."""
    base = live_server.url
    token = _api(base, "POST", "/api/v1/auth/token", {"email": "orga@demo.invalid", "password": DEMO_PASSWORD})["token"]
    sessions = _api(base, "GET", f"/api/v1/events/{SLUG}/sessions")["sessions"]
    slot = next(s for s in sessions if s["slots"])["slots"][0]
    start = datetime.fromisoformat(slot["start"]).replace(hour=23, minute=0)
    place = {"room_id": slot["room_id"], "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()}
    _api(base, "POST", f"/api/v1/events/{SLUG}/sessions", {"title": HOSTILE, **place}, token)
    _api(base, "POST", f"/api/v1/events/{SLUG}/releases", {"name": f"widget {MARK}"}, token)
    earlier = {**place, "start": (start - timedelta(hours=1)).isoformat(),
               "end": (start - timedelta(minutes=30)).isoformat()}
    _api(base, "POST", f"/api/v1/events/{SLUG}/sessions", {"title": DRAFT, **earlier}, token)
    released = _api(base, "GET", f"/api/v1/events/{SLUG}/sessions")["sessions"]
    return {"released": [s for s in released if s["start"]]}


@pytest.fixture(scope="module")
def other_site(live_server: Any) -> Iterator[str]:
    """The example page of docs/ served by a second server (another origin), pointing at the app server."""
    page = EXAMPLE.read_text().replace("http://127.0.0.1:5000", live_server.url).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            if self.path == "/":
                self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_widget_on_another_origin_shows_released_programme_escaped(new_page: Any, live_server: Any,
                                                                   programme: dict[str, Any], other_site: str) -> None:
    assert other_site != live_server.url
    page = new_page()
    WATCHES[id(page)].allowed_external.append(other_site)
    with page.expect_response(lambda r: r.url.endswith(f"/api/v1/events/{SLUG}/sessions")) as answer:
        page.goto(f"{other_site}/")
    assert answer.value.headers["access-control-allow-origin"] == "*"
    assert answer.value.request.all_headers().get("origin") == other_site
    widget = page.locator("#programm")
    expect(widget).to_have_attribute("data-state", "ready")
    expect(page.locator("#jetzt")).to_have_attribute("data-state", "ready")
    items = widget.locator(".konferenz-widget-session")
    assert items.count() == len(programme["released"])
    expect(widget.get_by_text(f"Gefährlich {MARK}", exact=False)).to_have_count(1)
    assert HOSTILE in widget.locator(".konferenz-widget-title").all_text_contents()
    assert widget.locator("img, b").count() == 0
    assert page.evaluate("window.__widgetXss") is None
    assert DRAFT not in (widget.text_content() or "")
    link = widget.locator("a.konferenz-widget-title").first
    assert (link.get_attribute("href") or "").startswith(f"{live_server.url}/events/{SLUG}/sessions/")
    next_list = page.locator("#jetzt .konferenz-widget-next .konferenz-widget-session")
    assert next_list.count() >= 1
    assert DRAFT not in (page.locator("#jetzt").text_content() or "")
