"""Authentication and sessions: brute force, fixation, cookie replay, open redirects, cookie flags, host poisoning."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from conference.auth.models import LoginSession
from conference.core.mail import OutboxMessage
from conference.extensions import db
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import PASSWORD, csrf_token, login
from tests.security.conftest import Evidence, StateGuard, World, assert_refused, scalar_count


def _session_cookie(client: Any) -> str | None:
    cookie = client.get_cookie("conference_session")
    return cookie.value if cookie else None


def _logged_in(app: Flask, cookie: str | None) -> bool:
    client = app.test_client()
    if cookie:
        client.set_cookie("conference_session", cookie, domain="localhost")
    return client.get("/api/v1/me").status_code == 200


# --- brute force ------------------------------------------------------------------------------------------


def test_brute_force_with_rotating_forwarded_for_is_limited_per_account(world: World, evidence: Evidence) -> None:
    """X-Forwarded-For is not trusted without a configured proxy, so rotating it buys no extra attempts."""
    limit = world.app.config["LOGIN_FAILURE_LIMIT_ACCOUNT"][0]
    client = world.app.test_client()
    token = csrf_token(client, "/login")
    statuses = []
    for attempt in range(limit + 5):
        response = client.post("/login", data={"email": "orga@example.org", "password": f"guess-{attempt}",
                                                "csrf_token": token},
                               headers={"X-Forwarded-For": f"203.0.113.{attempt}", "X-Real-IP": f"10.0.0.{attempt}"})
        evidence.add("variants")
        statuses.append(response.status_code)
    assert statuses == [400] * limit + [429] * 5
    # The right password is refused as well while the limit holds: no login session is created.
    before = scalar_count(LoginSession)
    response = client.post("/login", data={"email": "orga@example.org", "password": PASSWORD, "csrf_token": token},
                           headers={"X-Forwarded-For": "198.51.100.7"})
    assert_refused(response, 429, evidence, "correct password during lockout")
    assert scalar_count(LoginSession) == before


def test_password_spraying_from_one_address_is_limited(world: World, evidence: Evidence) -> None:
    """Many accounts, one client address (rotating X-Forwarded-For): once the address has failed
    `LOGIN_FAILURE_LIMIT_ADDRESS` times, it gets no second guess at any account it already failed on."""
    limit = 10
    world.app.config["LOGIN_FAILURE_LIMIT_ADDRESS"] = (limit, 900)  # the default (100) costs 100 hashes here
    client = world.app.test_client()
    token = csrf_token(client, "/login")
    statuses = []
    for attempt, password in enumerate(["Sommer2027!"] * limit + ["Winter2027!"] * 3):
        response = client.post("/login", data={"email": f"victim{attempt % limit}@example.org",
                                                "password": password, "csrf_token": token},
                               headers={"X-Forwarded-For": f"203.0.113.{attempt}"})
        evidence.add("variants")
        statuses.append(response.status_code)
    assert statuses == [400] * limit + [429] * 3


def test_token_endpoint_shares_the_login_limit(world: World, evidence: Evidence) -> None:
    limit = world.app.config["LOGIN_FAILURE_LIMIT_ACCOUNT"][0]
    client = world.app.test_client()
    for attempt in range(limit):
        response = client.post("/api/v1/auth/token", json={"email": "orga@example.org", "password": f"x{attempt}"},
                               headers={"X-Forwarded-For": f"203.0.113.{attempt}"})
        evidence.add("variants")
        assert response.status_code == 401
    response = client.post("/api/v1/auth/token", json={"email": "orga@example.org", "password": PASSWORD})
    assert_refused(response, 429, evidence, "token issue during lockout")
    assert response.get_json()["error"] == "rate_limited"


# --- fixation and replay ----------------------------------------------------------------------------------


def test_login_renews_the_session_against_fixation(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    client.get("/login")
    planted = _session_cookie(client)
    assert planted is not None  # the CSRF token lives in the anonymous session
    assert login(client, "attendee@example.org").status_code == 302
    after = _session_cookie(client)
    evidence.add("variants", 2)
    assert after != planted
    assert _logged_in(world.app, after) is True
    assert _logged_in(world.app, planted) is False


def test_cookie_replayed_after_logout_is_dead(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    login(client, "attendee@example.org")
    stolen = _session_cookie(client)
    assert _logged_in(world.app, stolen) is True
    token = csrf_token(client, "/account")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    evidence.add("variants")
    assert _logged_in(world.app, stolen) is False
    replay = world.app.test_client()
    replay.set_cookie("conference_session", stolen or "", domain="localhost")
    response = replay.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert_refused(replay.get("/api/v1/me"), 401, evidence, "replayed cookie on the API")


def test_tampered_cookie_is_ignored(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    login(client, "attendee@example.org")
    cookie = _session_cookie(client) or ""
    for forged in (cookie[:-2] + "xx", "eyJfdXNlcl9pZCI6IjEifQ.forged.sig", cookie + ".", "", "a" * 3900):
        evidence.add("variants")
        assert _logged_in(world.app, forged) is False


# --- open redirects ---------------------------------------------------------------------------------------

EVIL_NEXT = [
    "//evil.example", "///evil.example", "////evil.example", "http://evil.example", "https://evil.example/",
    "HTTPS://evil.example", "https:evil.example", "https:/evil.example", "//evil.example/%2F..",
    "/\\evil.example", "\\\\evil.example", "\\/evil.example", "/\t/evil.example", "/\n/evil.example",
    " //evil.example", "%2F%2Fevil.example", "/%2F/evil.example", "%252F%252Fevil.example",
    "https://localhost@evil.example", "https://evil.example#@localhost", "//localhost.evil.example",
    "javascript:alert(document.domain)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
    "\x00//evil.example", "/%09/evil.example", "/%5Cevil.example", "\uff0f\uff0fevil.example",
    "//evil\u3002example", "http:\\\\evil.example", "//\u2215evil.example", "/.//evil.example"[1:],
    "https://evil.example/?next=/", "//%65vil.example", "/\r\nLocation: http://evil.example",
]


def _refused_at_door(variant: str) -> bool:
    return any(ord(c) < 32 and c not in "\t\n\r" for c in variant)


def _assert_stays_home(location: str, variant: str) -> None:
    resolved = urlsplit(urljoin("http://localhost/login", location))
    assert resolved.scheme in ("http", "https") and resolved.netloc == "localhost", (variant, location)
    assert "evil" not in location.lower() or location.startswith("/"), (variant, location)


@pytest.mark.parametrize("route", ["/login", "/register"])
def test_next_never_leaves_the_site(route: str, world: World, evidence: Evidence) -> None:
    world.app.config["REGISTRATION_LIMIT"] = (1000, 3600)  # many new accounts from one address are the point here
    for index, variant in enumerate(EVIL_NEXT):
        client = world.app.test_client()
        page = client.get(f"{route}?next={quote(variant, safe='')}")
        # Control characters are refused at the door (400); everything else renders the form.
        assert page.status_code == (400 if _refused_at_door(variant) else 200), (variant, page.status_code)
        token = csrf_token(client, route)
        if route == "/login":
            data = {"email": "attendee@example.org", "password": PASSWORD}
        else:
            data = {"name": "Neue Person", "email": f"new{index}@example.org", "password": "long-enough-pass-1"}
        response = client.post(route, data={**data, "next": variant, "csrf_token": token})
        evidence.add("variants")
        if _refused_at_door(variant):
            assert response.status_code == 400
            assert "Location" not in response.headers
            continue
        assert response.status_code == 302, (variant, response.status_code)
        location = response.headers["Location"]
        if urlsplit(urljoin("http://localhost/", location)).netloc != "localhost":
            evidence.note("wrongly_accepted", f"open redirect {variant!r} -> {location}")
        _assert_stays_home(location, variant)


def test_next_to_a_local_page_still_works(world: World) -> None:
    client = world.app.test_client()
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": "attendee@example.org", "password": PASSWORD,
                                           "next": "/events/alpha/agenda?day=1", "csrf_token": token})
    assert response.headers["Location"] == "/events/alpha/agenda?day=1"


# --- cookie flags -----------------------------------------------------------------------------------------


def _set_cookie_headers(response: Any) -> list[str]:
    return [value for key, value in response.headers.items() if key.lower() == "set-cookie"]


def test_session_cookie_flags_over_http(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    response = login(client, "attendee@example.org")
    cookies = [c for c in _set_cookie_headers(response) if c.startswith("conference_session=")]
    evidence.add("variants")
    assert len(cookies) == 1
    flags = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags


def test_session_cookie_is_secure_behind_an_https_proxy(tmp_path: Any, evidence: Evidence) -> None:
    from conference import create_app
    from conference.auth import accounts
    from conference.core.after_commit import commit

    proxied = create_app(settings_for_tests(tmp_path / "proxied", TRUSTED_PROXY_COUNT=1))
    with proxied.app_context():
        db.create_all()
        accounts.create_user(email="attendee@example.org", name="Anna", password=PASSWORD, verified=True)
        commit()
        client = proxied.test_client()
        https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.1"}
        page = client.get("/login", headers=https)
        from tests.fixtures.accounts import CSRF_PATTERN

        match = CSRF_PATTERN.search(page.get_data(as_text=True))
        assert match
        response = client.post("/login", headers={**https, "Referer": "https://localhost/login"},
                               data={"email": "attendee@example.org", "password": PASSWORD,
                                     "csrf_token": match.group(1) or match.group(2)})
        assert page.status_code == 200 and response.status_code == 302, response.get_data(as_text=True)[:300]
        cookies = [c for c in _set_cookie_headers(response) if c.startswith("conference_session=")]
        evidence.add("variants")
        assert cookies and "secure" in [part.strip().lower() for part in cookies[0].split(";")]
        assert response.headers.get("Strict-Transport-Security", "").startswith("max-age=")
        db.session.remove()
        db.engine.dispose()


# --- host header poisoning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example"},
    {"X-Forwarded-Host": "evil.example"},
    {"Host": "localhost", "X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"},
    {"Host": "evil.example:80@localhost"},
], ids=["host", "x-forwarded-host", "forwarded", "userinfo"])
def test_mail_links_ignore_the_host_header(headers: dict[str, str], world: World, evidence: Evidence) -> None:
    """Invitation links are built from EXTERNAL_URL, never from what the request claims its host is."""
    client = world.client("organiser")
    token = world.csrf("organiser")
    response = client.post("/manage/events/alpha/speakers/invite", headers=headers, data={
        "csrf_token": token, "session_id": world.own_session.id, "speaker_id": 0, "name": "Ina Invited",
        "email": "ina@example.org", "role": "speaker"})
    evidence.add("variants")
    assert response.status_code in (303, 400, 404), response.get_data(as_text=True)[:300]
    db.session.expire_all()
    bodies = [m.body for m in db.session.scalars(select(OutboxMessage))]
    assert all("evil.example" not in body for body in bodies)
    if response.status_code == 303:
        assert any("http://localhost/events/alpha/invitations/" in body for body in bodies)


def test_reminder_links_ignore_the_host_header(world: World, evidence: Evidence, guard: StateGuard) -> None:
    client = world.client("organiser")
    response = client.post(f"/manage/events/alpha/presentations/remind/{world.foreign_session.id}",
                           headers={"Host": "evil.example"}, data={"csrf_token": world.csrf("organiser")})
    evidence.add("variants")
    assert response.status_code in (303, 400, 404)
    db.session.expire_all()
    assert all("evil.example" not in m.body for m in db.session.scalars(select(OutboxMessage)))
