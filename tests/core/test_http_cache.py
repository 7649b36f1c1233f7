"""HTTP caching: strong ETags and 304s on exports, pages and API reads; public only for anonymous shared answers."""

from __future__ import annotations

import pytest

from conference.agenda import services
from conference.core import after_commit
from tests.fixtures.accounts import api_token_for, csrf_token, login

EXPORTS = ("/events/agenda-test/schedule.xml", "/events/agenda-test/schedule.json",
           "/events/agenda-test/schedule.ics", "/api/v1/events/agenda-test/sessions")


@pytest.fixture
def released(agenda_world, create_agenda_session, publish):
    w = agenda_world
    talk = create_agenda_session(w.event, "Eröffnung", room=w.rooms[0], start="09:00", end="10:00",
                                 speakers=[w.speakers[0]])
    after_commit.commit()
    publish(w.event, "v1")
    return w, talk


@pytest.mark.parametrize("url", EXPORTS)
def test_anonymous_export_is_public_with_strong_etag_and_304(client, released, url) -> None:
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "public, max-age=60"
    assert {"Accept-Language", "Cookie"} <= {v.strip() for v in first.headers["Vary"].split(",")}
    assert first.headers["Last-Modified"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    since = client.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    stale = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.data == first.data


def test_public_max_age_is_configurable(app, client, released) -> None:
    app.config["PUBLIC_MAX_AGE"] = 5
    assert client.get(EXPORTS[0]).headers["Cache-Control"] == "public, max-age=5"


def test_draft_change_keeps_etag_and_body_release_changes_both(client, released, publish) -> None:
    w, talk = released
    before = {url: client.get(url) for url in EXPORTS}
    services.update_session(talk, title="Geheimer Entwurf", actor=None)
    after_commit.commit()
    for url, response in before.items():
        again = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304, url
        fresh = client.get(url)
        assert b"Geheimer Entwurf" not in fresh.data and fresh.headers["ETag"] == response.headers["ETag"]
    publish(w.event, "v2")
    for url, response in before.items():
        after = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
        assert after.status_code == 200, url
        assert after.headers["ETag"] != response.headers["ETag"]
        assert "Geheimer Entwurf" in after.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/events/agenda-test/agenda", "/events/agenda-test/agenda/now",
                                 "/events/agenda-test/", "/events/agenda-test/speakers"])
def test_anonymous_page_holds_a_csrf_token_so_it_is_private_but_revalidated(client, released, url) -> None:
    first = client.get(url)
    assert first.status_code == 200
    assert b'name="csrf_token"' in first.data
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_session_page_for_anonymous_is_private_and_304(client, released) -> None:
    _w, talk = released
    url = f"/events/agenda-test/sessions/{talk.id}"
    first = client.get(url)
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_logged_in_pages_and_token_reads_stay_private_no_store(client, released, person) -> None:
    w, talk = released
    user = person(w.event, "attendee")
    login(client, user.email)
    for url in ("/events/agenda-test/agenda", f"/events/agenda-test/sessions/{talk.id}", *EXPORTS):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "private, no-store", url


def test_token_api_read_is_private(client, released, person) -> None:
    w, _talk = released
    token = api_token_for(person(w.event, "attendee"))
    response = client.get("/api/v1/events/agenda-test/sessions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"


def test_personal_calendar_feed_stays_private(client, released, person) -> None:
    w, talk = released
    user = person(w.event, "attendee")
    login(client, user.email)
    client.post(f"/events/agenda-test/sessions/{talk.id}/star", data={"csrf_token": csrf_token(client, "/events/agenda-test/agenda")})
    assert client.post("/events/agenda-test/my-agenda/feed", data={"csrf_token": csrf_token(client, "/events/agenda-test/agenda")}).status_code == 303
    page = client.get("/events/agenda-test/my-agenda").get_data(as_text=True)
    feed_url = page.split("/calendar/", 1)[1].split(".ics", 1)[0]
    client.post("/logout", data={"csrf_token": csrf_token(client, "/events/agenda-test/agenda")})
    response = client.get(f"/events/agenda-test/calendar/{feed_url}.ics")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"


def test_flashed_message_makes_an_export_answer_private(client, released) -> None:
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "Hallo")]
    response = client.get(EXPORTS[1])
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_page_tag_survives_the_csrf_tokens_timestamp_but_not_a_new_session(app, client, released) -> None:
    """Flask-WTF signs the token with the current second: the tag is computed without that part."""
    import time

    first = client.get("/events/agenda-test/agenda")
    time.sleep(1.1)
    second = client.get("/events/agenda-test/agenda")
    assert first.data != second.data  # the token's timestamp moved on
    assert first.headers["ETag"] == second.headers["ETag"]
    assert client.get("/events/agenda-test/agenda", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    other = app.test_client()  # another visitor: another session secret, another tag
    assert other.get("/events/agenda-test/agenda").headers["ETag"] != first.headers["ETag"]
