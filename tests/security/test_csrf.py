"""CSRF and cross-origin: every state-changing route without or with a wrong token, state changes over GET."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import url_for

from tests.fixtures.presentations import pdf_bytes
from tests.security.conftest import Evidence, StateGuard, World, assert_refused
from tests.security.test_authorization import CELLS, UNSAFE, _url_values

FORM_CELLS = [(e, m, r) for e, m, r in CELLS if m in UNSAFE and not r.startswith("/api/")]
API_CELLS = [(e, m, r) for e, m, r in CELLS if m in UNSAFE and r.startswith("/api/")]
GET_CELLS: list[tuple[str, str, str]] = []


def _url(world: World, endpoint: str, rule: str) -> str:
    values = _url_values(world)
    with world.app.test_request_context():
        return url_for(endpoint, **{k: v for k, v in values.items() if f"<{k}>" in rule or f":{k}>" in rule})


def _variants(world: World) -> list[tuple[str, dict[str, Any]]]:
    foreign = world.csrf("attendee")  # valid for the attendee's session, not for the organiser's
    return [("no token", {}), ("empty token", {"csrf_token": ""}), ("wrong token", {"csrf_token": foreign}),
            ("garbage token", {"csrf_token": "IjEi.forged.sig"}),
            ("token in a header of another session", {"_header": foreign})]


@pytest.mark.parametrize(("endpoint", "method", "rule"), FORM_CELLS, ids=[f"{m} {e}" for e, m, _r in FORM_CELLS])
def test_form_without_valid_csrf_token_is_refused(endpoint: str, method: str, rule: str, world: World,
                                                  guard: StateGuard, evidence: Evidence) -> None:
    url = _url(world, endpoint, rule)
    client = world.client("organiser")
    variants = _variants(world)
    guard.take()
    for name, data in variants:
        headers = {"X-CSRFToken": data.pop("_header")} if "_header" in data else {}
        if url.endswith("/slides"):
            data = {**data, "file": (io.BytesIO(pdf_bytes()), "x.pdf")}
        headers["Origin"] = "https://evil.example"
        response = client.open(url, method=method, data=data, headers=headers,
                               content_type="multipart/form-data" if url.endswith("/slides") else None)
        # The unsubscribe link's signature is its authorisation (mail programs POST without a token, RFC 8058);
        # a forged link finds nothing.
        expected = 404 if endpoint == "mail.unsubscribe" else 400
        assert_refused(response, expected, evidence, f"{name}: {method} {url}")
        guard.assert_unchanged(f"{name}: {method} {url}")


@pytest.mark.parametrize(("endpoint", "method", "rule"), API_CELLS, ids=[f"{m} {e}" for e, m, _r in API_CELLS])
def test_api_with_cookie_but_without_csrf_is_refused(endpoint: str, method: str, rule: str, world: World,
                                                     guard: StateGuard, evidence: Evidence) -> None:
    """A cross-site page can make the browser send the cookie, never the token or a bearer header."""
    url = _url(world, endpoint, rule)
    client = world.client("organiser")
    guard.take()
    for origin in ("https://evil.example", "null", None):
        headers = {"Origin": origin} if origin else {}
        for body in ({"json": {"title": "x", "email": "orga@example.org", "password": "x"}},
                     {"data": "title=x", "content_type": "text/plain"},
                     {"data": {"file": (io.BytesIO(pdf_bytes()), "x.pdf")}, "content_type": "multipart/form-data"}):
            response = client.open(url, method=method, headers=headers, **body)  # type: ignore[arg-type]
            if endpoint == "auth.api_issue_token":
                # Needs the password, not a cookie: CSRF cannot ride on it. It issues nothing without it.
                assert_refused(response, (400, 401), evidence, f"{method} {url}")
            else:
                assert_refused(response, 400, evidence, f"{origin} {method} {url}")
            guard.assert_unchanged(f"{origin} {method} {url}")


def _get_cells() -> list[tuple[str, str]]:
    import tempfile

    from conference import create_app

    app = create_app({"INSTANCE_PATH": tempfile.mkdtemp(prefix="get-"), "SECRET_KEY": "x", "TESTING": True,
                      "DATABASE_URL": "sqlite://", "ASYNC_MODE": "threading"})
    return sorted({(r.endpoint, r.rule) for r in app.url_map.iter_rules()
                   if "GET" in (r.methods or set()) and r.endpoint != "static"
                   and not r.endpoint.startswith("socketio_")})  # Engine.IO answers /socket.io/, not Flask


@pytest.mark.parametrize("principal", ["anonymous", "attendee", "organiser"])
def test_get_requests_change_nothing(principal: str, world: World, guard: StateGuard, evidence: Evidence) -> None:
    """Every GET route, even with action-like query strings, leaves every table and file as it was."""
    client = world.client(principal)
    world.csrf(principal)
    guard.take()
    for endpoint, rule in _get_cells():
        url = _url(world, endpoint, rule)
        for query in ("", "?delete=1&action=cancel&_method=POST&visibility_mode=published&role=organiser"):
            response = client.get(url + query, headers={"X-HTTP-Method-Override": "DELETE"})
            response.close()
            evidence.add("variants")
            if response.status_code >= 500:
                evidence.note("server_errors", f"GET {url}{query}")
            assert response.status_code < 500, (url, response.status_code)
    guard.assert_unchanged(f"GET routes as {principal}")
