"""The agenda benchmark runs end to end against the real server (smoke mode, a few seconds)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conference.agenda import pagecache, services
from conference.agenda.models import ConferenceSession
from conference.core.after_commit import commit
from conference.events.models import Event
from conference.extensions import db
from conference.serving.server import fair_turns
from tests.fixtures.accounts import login

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.server
def test_agenda_bench_smoke() -> None:
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "agenda_bench.py"), "--smoke"],
                            capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for page in ("day grid", "session page", "schedule.xml", "sessions API"):
        assert any(line.startswith(page) for line in lines), result.stdout
    assert "FAIL" not in result.stdout


# --- the per-release page cache behind the benchmark figures -----------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def released(agenda_world, create_agenda_session, publish):
    w = agenda_world
    talk = create_agenda_session(w.event, "Erster Titel", room=w.rooms[0], start="09:00", end="10:00",
                                 speakers=[w.speakers[0]], abstract="**Fett**")
    publish(w.event, "1.0")
    return w, talk


def _pages(talk_id: int) -> list[str]:
    return ["/events/agenda-test/agenda", f"/events/agenda-test/sessions/{talk_id}", "/events/agenda-test/schedule.xml",
            "/events/agenda-test/schedule.json", "/events/agenda-test/schedule.ics",
            "/api/v1/events/agenda-test/sessions"]


def test_cached_grid_gives_each_visitor_own_working_csrf_token(app, released) -> None:
    first, second = app.test_client(), app.test_client()
    pages = [client.get("/events/agenda-test/agenda") for client in (first, second, first)]
    tokens = [CSRF.search(page.get_data(as_text=True)).group(1) for page in pages]
    assert all(page.status_code == 200 for page in pages)
    assert tokens[0] != tokens[1]
    assert all(pagecache.CSRF_PLACEHOLDER not in page.get_data(as_text=True) for page in pages)
    assert "conference_session=" in pages[1].headers["Set-Cookie"]
    answer = second.post("/language", data={"csrf_token": tokens[1], "locale": "en", "next": "/"})
    assert answer.status_code == 303
    refused = second.post("/language", data={"csrf_token": tokens[0], "locale": "en", "next": "/"})
    assert refused.status_code == 400


def test_cached_pages_follow_a_new_release(app, client, released, publish) -> None:
    w, talk = released
    assert all("Erster Titel" in client.get(path).get_data(as_text=True) for path in _pages(talk.id))
    with app.app_context():
        services.update_session(db.session.get(ConferenceSession, talk.id), title="Zweiter Titel", actor=None)
        commit()
    assert all("Erster Titel" in client.get(path).get_data(as_text=True) for path in _pages(talk.id))
    with app.app_context():
        publish(db.session.get(Event, w.event.id), "2.0")
    for path in _pages(talk.id):
        body = client.get(path).get_data(as_text=True)
        assert "Zweiter Titel" in body, path
        assert "Erster Titel" not in body, path


def test_cached_pages_follow_event_changes(app, client, released) -> None:
    w, talk = released
    for path in _pages(talk.id):
        client.get(path)
    with app.app_context():
        db.session.get(Event, w.event.id).title = "Neuer Veranstaltungsname"
        commit()
    for path in ("/events/agenda-test/agenda", f"/events/agenda-test/sessions/{talk.id}",
                 "/events/agenda-test/schedule.xml", "/events/agenda-test/schedule.ics"):
        assert "Neuer Veranstaltungsname" in client.get(path).get_data(as_text=True), path


def test_cached_pages_per_language_and_host(client, released) -> None:
    german = client.get("/events/agenda-test/agenda", headers={"Accept-Language": "de"}).get_data(as_text=True)
    english = client.get("/events/agenda-test/agenda", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="de">' in german
    assert '<html lang="en">' in english
    other = client.get("/events/agenda-test/schedule.xml", base_url="http://andere.example").get_data(as_text=True)
    assert "http://andere.example/events/agenda-test" in other
    assert "http://localhost/events/agenda-test" in client.get("/events/agenda-test/schedule.xml").get_data(
        as_text=True)


def test_flashed_message_and_logged_in_pages_are_not_shared(app, client, released, create_user) -> None:
    _w, talk = released
    client.get("/events/agenda-test/agenda")
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "Nur für diese Person")]
    assert "Nur für diese Person" in client.get("/events/agenda-test/agenda").get_data(as_text=True)
    stranger = app.test_client()
    assert "Nur für diese Person" not in stranger.get("/events/agenda-test/agenda").get_data(as_text=True)
    create_user("leser@example.org", name="Lea Leser")
    login(client, "leser@example.org")
    page = client.get(f"/events/agenda-test/sessions/{talk.id}").get_data(as_text=True)
    assert "Lea Leser" in page
    assert "Lea Leser" not in stranger.get(f"/events/agenda-test/sessions/{talk.id}").get_data(as_text=True)


def test_fair_turns_yields_before_every_request() -> None:
    calls: list[str] = []

    def app(environ: dict, start_response: object) -> list[bytes]:
        calls.append("app")
        return [b"ok"]

    wrapped = fair_turns(app, lambda seconds: calls.append(f"sleep {seconds}"))
    assert wrapped({}, None) == [b"ok"]
    assert wrapped({}, None) == [b"ok"]
    assert calls == ["sleep 0", "app", "sleep 0", "app"]
