"""CORS: any origin reads the public API and the exports (no credentials); writes only from configured origins."""

from __future__ import annotations

import pytest

from conference.agenda import services
from conference.core import after_commit
from conference.core.cors import parse_origins
from tests.fixtures.accounts import api_token_for, csrf_token, login

FOREIGN = "https://widget.example.net"


@pytest.fixture
def released(agenda_world, create_agenda_session, publish):
    w = agenda_world
    talk = create_agenda_session(w.event, "Eröffnung", room=w.rooms[0], start="09:00", end="10:00")
    after_commit.commit()
    publish(w.event, "v1")
    return w, talk


@pytest.mark.parametrize("url", ["/api/v1/events/agenda-test/sessions", "/api/v1/events/agenda-test",
                                 "/events/agenda-test/schedule.json", "/events/agenda-test/schedule.xml",
                                 "/events/agenda-test/schedule.ics"])
def test_public_reads_allow_every_origin_without_credentials(client, released, url) -> None:
    response = client.get(url, headers={"Origin": FOREIGN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]
    preflight = client.options(url, headers={"Origin": FOREIGN, "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": "if-none-match"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert "If-None-Match" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers


def test_public_read_304_keeps_cors_header(client, released) -> None:
    url = "/api/v1/events/agenda-test/sessions"
    etag = client.get(url).headers["ETag"]
    again = client.get(url, headers={"Origin": FOREIGN, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("url", ["/events/agenda-test/agenda", "/login", "/events/agenda-test/", "/api/v1/me",
                                 "/api/v1/events/agenda-test/starred", "/api/v1/auth/tokens"])
def test_pages_and_personal_reads_get_no_cors_headers(client, released, url) -> None:
    response = client.get(url, headers={"Origin": FOREIGN})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_writes_from_a_foreign_origin_are_not_allowed_by_default(client, released) -> None:
    preflight = client.options("/api/v1/events/agenda-test/sessions",
                               headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = client.post("/api/v1/events/agenda-test/releases", json={"name": "x"}, headers={"Origin": FOREIGN})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_every_public_read_endpoint_exists(app) -> None:
    from conference.core.cors import PUBLIC_READS

    assert set(app.view_functions) >= PUBLIC_READS


def test_configured_origin_may_write_with_a_token_never_with_credentials(app, client, released, person) -> None:
    w, talk = released
    services.update_session(talk, title="Neuer Titel", actor=None)
    after_commit.commit()
    app.extensions["cors_origins"] = parse_origins(f"{FOREIGN}, https://other.example.org")
    preflight = client.options("/api/v1/events/agenda-test/releases",
                               headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.headers["Access-Control-Allow-Origin"] == FOREIGN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    assert "Origin" in preflight.headers["Vary"]
    token = api_token_for(person(w.event, "organiser"))
    published = client.post("/api/v1/events/agenda-test/releases", json={"name": "v2"},
                            headers={"Origin": FOREIGN, "Authorization": f"Bearer {token}"})
    assert published.status_code == 201
    assert published.headers["Access-Control-Allow-Origin"] == FOREIGN
    assert "Access-Control-Allow-Credentials" not in published.headers
    unknown = client.options("/api/v1/events/agenda-test/releases",
                             headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in unknown.headers


def test_cookie_login_write_from_a_configured_origin_is_refused_by_csrf(app, client, released, person) -> None:
    w, _talk = released
    app.extensions["cors_origins"] = parse_origins(FOREIGN)
    organiser = person(w.event, "organiser")
    login(client, organiser.email)
    csrf_token(client, "/events/agenda-test/agenda")
    response = client.post("/api/v1/events/agenda-test/releases", json={"name": "v2"}, headers={"Origin": FOREIGN})
    assert response.status_code == 400
    assert response.get_json()["error"] == "csrf_failed"


@pytest.mark.parametrize("value", ["example.org", "https://example.org/path", "ftp://example.org", "*"])
def test_malformed_origin_setting_stops_the_start(value) -> None:
    with pytest.raises(ValueError, match="CONFERENCE_CORS_ORIGINS"):
        parse_origins(value)
