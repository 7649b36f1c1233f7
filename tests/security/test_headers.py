"""Security headers on every kind of response: pages, JSON, static files, downloads, errors, Socket.IO polling."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.presentations import pdf_bytes, upload
from tests.security.conftest import Evidence, World


def _directives(policy: str) -> dict[str, str]:
    result = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            result[name.lower()] = value
    return result


def assert_hardened(response: Any, what: str, *, private: bool) -> None:
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    directives = _directives(policy)
    assert directives, (what, "no CSP")
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, (what, policy)
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts in ("'self'", "'none'") or "sandbox" in directives, (what, policy)
    assert directives.get("frame-ancestors") == "'none'", (what, policy)
    assert directives.get("object-src", directives.get("default-src")) == "'none'" or \
        directives.get("default-src") == "'none'", (what, policy)
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("Referrer-Policy") in ("strict-origin-when-cross-origin", "no-referrer", "same-origin"), what
    if private:
        cache = headers.get("Cache-Control", "")
        assert "no-store" in cache, (what, cache)


def _kinds(world: World) -> list[tuple[str, Any, bool]]:
    anonymous = world.app.test_client()
    organiser = world.client("organiser")
    bearer = {"Authorization": f"Bearer {world.tokens['organiser']}"}
    deck = f"/api/v1/sessions/{world.foreign_session.id}/presentations/{world.foreign_presentation_id}"
    return [
        ("public page", anonymous.get("/events/alpha/"), False),
        ("private page", organiser.get("/manage/events/alpha/"), True),
        ("account page", organiser.get("/account"), True),
        ("public JSON", anonymous.get("/api/v1/events"), False),
        ("private JSON (token)", world.app.test_client().get("/api/v1/me", headers=bearer), True),
        ("private JSON (cookie)", organiser.get("/api/v1/me"), True),
        ("static CSS", anonymous.get("/static/css/main.css"), False),
        ("static JS", anonymous.get("/static/js/live.js"), False),
        ("download", world.app.test_client().get(f"{deck}/download", headers=bearer), True),
        ("calendar export", anonymous.get("/events/alpha/schedule.ics"), False),
        ("XML export", anonymous.get("/events/alpha/schedule.xml"), False),
        ("error 404 HTML", anonymous.get("/nowhere"), False),
        ("error 404 JSON", anonymous.get("/api/v1/nowhere"), False),
        ("error 405", anonymous.put("/login"), False),
        ("error 400 CSRF", anonymous.post("/login", data={}), False),
        ("error 401 JSON", anonymous.get("/api/v1/me"), False),
        ("error 413", world.app.test_client().post(
            f"/api/v1/sessions/{world.foreign_session.id}/presentations", headers={
                **bearer, "Content-Type": "multipart/form-data; boundary=x",
                "Content-Length": str(10 * 1024 * 1024 * 1024)}, data=b""), True),
        ("socket.io polling", anonymous.get("/socket.io/?EIO=4&transport=polling"), False),
        ("socket.io polling, logged in", organiser.get("/socket.io/?EIO=4&transport=polling"), False),
        ("redirect", anonymous.get("/manage/events/alpha/"), False),
        ("health", anonymous.get("/healthz"), False),
    ]


def test_every_response_type_carries_the_headers(world: World, evidence: Evidence) -> None:
    failures = []
    for what, response, private in _kinds(world):
        response.close()
        evidence.add("variants")
        assert response.status_code < 500, (what, response.status_code)
        try:
            assert_hardened(response, what, private=private)
        except AssertionError as error:
            failures.append(str(error))
    assert failures == [], "\n".join(f.splitlines()[0] for f in failures)


def test_upload_of_html_is_never_served_inline(world: World, evidence: Evidence) -> None:
    """Even a file the checks let through is downloaded as an attachment in a sandbox, never rendered."""
    response = upload(world.app.test_client(), world.own_session.id, "folien.pdf", pdf_bytes(),
                      token=world.tokens["speaker"])
    assert response.status_code == 201
    deck = response.get_json()["id"]
    download = world.app.test_client().get(
        f"/api/v1/sessions/{world.own_session.id}/presentations/{deck}/download",
        headers={"Authorization": f"Bearer {world.tokens['speaker']}"})
    download.close()
    evidence.add("variants")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert download.headers["Content-Type"] == "application/pdf"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost.evil.example"])
def test_api_sends_no_cors_grant_to_foreign_origins(origin: str, world: World, evidence: Evidence) -> None:
    client = world.client("organiser")
    for method, url in (("GET", "/api/v1/me"), ("OPTIONS", "/api/v1/events/alpha/sessions"),
                        ("GET", "/socket.io/?EIO=4&transport=polling")):
        response = client.open(url, method=method, headers={"Origin": origin,
                                                            "Access-Control-Request-Method": "DELETE"})
        evidence.add("variants")
        assert response.status_code < 500
        if not url.startswith("/socket.io/"):  # token sockets may come from other sites (docs/protocol.md)
            assert "Access-Control-Allow-Origin" not in response.headers, (url, dict(response.headers))
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(("method", "url", "allowed"), [
    ("TRACE", "/healthz", {"GET", "HEAD", "OPTIONS"}),
    ("TRACE", "/api/v1/events", {"GET", "HEAD", "OPTIONS"}),
    ("PUT", "/api/v1/openapi.json", {"GET", "HEAD", "OPTIONS"}),
    ("DELETE", "/api/v1/events/alpha/sessions", {"GET", "HEAD", "OPTIONS", "POST"}),
    ("TRACE", "/static/css/main.css", {"GET", "HEAD", "OPTIONS"}),
    ("PUT", "/socket.io/?EIO=4&transport=polling", {"GET", "POST", "OPTIONS"}),
    ("TRACE", "/socket.io/?EIO=4&transport=polling", {"GET", "POST", "OPTIONS"}),
])
def test_every_405_names_the_allowed_methods(method: str, url: str, allowed: set[str], world: World,
                                             evidence: Evidence) -> None:
    response = world.client("organiser").open(url, method=method)
    evidence.add("variants")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
