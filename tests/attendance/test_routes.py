"""Attendance pages: who may see what (permission cells), the CSV exports (csv module, formula-safe cells), the
threshold form, slide downloads counted, a person's own record without drafts, the data download."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import select

from conference.agenda.models import ConferenceSession
from conference.attendance.collector import collector
from conference.core.permissions import Role
from conference.extensions import db
from conference.presentations import services as presentation_services
from tests.attendance.helpers import T0, present, world
from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.presentations import pdf_bytes, upload

ORGANISER_PAGES = ["/manage/events/{slug}/attendance", "/manage/events/{slug}/attendance/live.json",
                   "/manage/events/{slug}/attendance/sessions.csv", "/manage/events/{slug}/attendance/presence.csv"]


@pytest.fixture
def stage(app: Any, create_event: Any, create_session: Any, person: Any) -> dict[str, Any]:
    w = world(create_event, create_session, person, names=("Jörg Müller", "=HYPERLINK(\"http://x\")", "Zoë Brandt"))
    event, (first, second), (joerg, formula, zoe) = w["event"], w["sessions"], w["people"]
    present(event, joerg, f"session:{first.id}", range(T0, T0 + 40))
    present(event, formula, f"session:{first.id}", range(T0 + 5, T0 + 7))
    present(event, zoe, f"session:{second.id}", range(T0 + 50, T0 + 55))
    other = create_event("andere", title="Andere Tagung")
    w.update(organiser=person(event, Role.ORGANISER, name="Olga Orga"),
             speaker=person(event, Role.SPEAKER, name="Sam Sprecher"),
             moderator=person(event, Role.MODERATOR, name="Mia Moderation"),
             foreign_organiser=person(other, Role.ORGANISER, name="Fremd Orga"))
    return w


@pytest.mark.parametrize("page", ORGANISER_PAGES)
@pytest.mark.parametrize("who,status", [("anonymous", 302), ("attendee", 403), ("speaker", 403),
                                        ("moderator", 403), ("foreign_organiser", 403), ("organiser", 200)])
def test_organiser_pages_permission_cells(client: Any, stage: dict[str, Any], page: str, who: str,
                                          status: int) -> None:
    if who == "attendee":
        login(client, stage["people"][0].email)
    elif who != "anonymous":
        login(client, stage[who].email)
    response = client.get(page.format(slug=stage["event"].slug))
    assert response.status_code == status
    if status == 302:
        assert "/login" in response.headers["Location"]
    if status != 200:
        assert "Zoë Brandt" not in response.get_data(as_text=True)  # another attendee's name


@pytest.mark.parametrize("who", ["attendee", "speaker", "foreign_organiser"])
def test_organiser_actions_refused_for_others(client: Any, stage: dict[str, Any], who: str) -> None:
    login(client, (stage["people"][0] if who == "attendee" else stage[who]).email)
    token = csrf_token(client, "/account")
    slug = stage["event"].slug
    assert client.post(f"/manage/events/{slug}/attendance/settings",
                       data={"certificate_min_minutes": "1", "csrf_token": token}).status_code == 403
    assert client.post(f"/manage/events/{slug}/attendance/certificates", data={"csrf_token": token}).status_code == 403
    assert client.get(f"/manage/events/{slug}/attendance/certificates.zip").status_code == 403
    db.session.refresh(stage["event"])
    assert stage["event"].certificate_min_minutes == 30


def test_unknown_event_is_404(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["organiser"].email)
    assert client.get("/manage/events/gibt-es-nicht/attendance").status_code == 404
    assert client.get("/account/attendance/gibt-es-nicht/certificate.pdf").status_code == 404


def test_dashboard_shows_figures_and_tables(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["organiser"].email)
    html = client.get(f"/manage/events/{stage['event'].slug}/attendance").get_data(as_text=True)
    first = stage["sessions"][0].id
    assert f'<tr data-session="{first}"><th scope="row">Eröffnung und Grüße</th><td class="unique">2</td>' \
           f'<td class="peak">2</td>' in html
    assert 'id="figure-attended">3<' in html and 'id="figure-registered">' in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "<script>" not in html  # no inline script (CSP)
    assert 'id="table-timeline"' in html
    data = client.get(f"/manage/events/{stage['event'].slug}/attendance/live.json").get_json()
    assert data["attended"] == 3
    assert {s["id"]: s["unique_attendees"] for s in data["sessions"]}[first] == 2


def test_sessions_csv_parses_and_neutralises_formulas(client: Any, stage: dict[str, Any], app: Any) -> None:
    first = db.session.get(ConferenceSession, stage["sessions"][0].id)
    first.title = "=SUMME(A1:A9)"
    db.session.commit()
    login(client, stage["organiser"].email)
    response = client.get(f"/manage/events/{stage['event'].slug}/attendance/sessions.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f"attachment; filename={stage['event'].slug}-attendance-sessions.csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:6] == ["session_id", "title", "room", "unique_attendees", "peak_concurrent", "average_minutes"]
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id[str(first.id)][1] == "'=SUMME(A1:A9)"
    assert by_id[str(first.id)][3:7] == ["2", "2", "21.0", "42"]
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_presence_csv_has_every_raw_minute(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["organiser"].email)
    text = client.get(f"/manage/events/{stage['event'].slug}/attendance/presence.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 40 + 2 + 5
    formula_rows = [r for r in rows if r["user_id"] == str(stage["people"][1].id)]
    assert formula_rows and all(r["name"] == "'=HYPERLINK(\"http://x\")" for r in formula_rows)
    assert rows[0]["minute_utc"].endswith("Z") and rows[0]["session_id"] == str(stage["sessions"][0].id)


@pytest.mark.parametrize("value", ["-1", "1441", "abc", "1.5", "", "٣"])
def test_bad_threshold_is_refused_and_changes_nothing(client: Any, stage: dict[str, Any], value: str) -> None:
    login(client, stage["organiser"].email)
    slug = stage["event"].slug
    token = csrf_token(client, f"/manage/events/{slug}/attendance")
    response = client.post(f"/manage/events/{slug}/attendance/settings",
                           data={"certificate_min_minutes": value, "csrf_token": token})
    assert response.status_code == 400
    db.session.refresh(stage["event"])
    assert stage["event"].certificate_min_minutes == 30


def test_threshold_is_saved_and_csrf_is_required(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["organiser"].email)
    slug = stage["event"].slug
    assert client.post(f"/manage/events/{slug}/attendance/settings",
                       data={"certificate_min_minutes": "5"}).status_code == 400  # no CSRF token
    token = csrf_token(client, f"/manage/events/{slug}/attendance")
    response = client.post(f"/manage/events/{slug}/attendance/settings",
                           data={"certificate_min_minutes": "5", "csrf_token": token})
    assert response.status_code == 303
    db.session.refresh(stage["event"])
    assert stage["event"].certificate_min_minutes == 5


def test_own_record_shows_released_titles_only(client: Any, stage: dict[str, Any]) -> None:
    first = db.session.get(ConferenceSession, stage["sessions"][0].id)
    first.title = "Entwurf: geheimer neuer Titel"  # changed after the release, not released
    db.session.commit()
    login(client, stage["people"][0].email)
    html = client.get("/account/attendance").get_data(as_text=True)
    assert "Eröffnung und Grüße" in html and "geheimer neuer Titel" not in html
    assert "Present in total: 40 minutes" in html
    assert "/account/attendance/tagung/certificate.pdf" in html
    data = json.loads(client.get("/account/data.json").get_data(as_text=True))
    section = next(value for key, value in data.items() if isinstance(value, dict) and "attendance" in value) \
        if "attendance" not in data else data
    assert section["attendance"][0]["total_minutes"] == 40
    assert "geheimer" not in json.dumps(data, ensure_ascii=False)


def test_own_record_page_needs_login_and_shows_nothing_of_others(client: Any, stage: dict[str, Any]) -> None:
    assert client.get("/account/attendance").status_code == 302
    login(client, stage["speaker"].email)
    html = client.get("/account/attendance").get_data(as_text=True)
    assert "No attendance recorded." in html and "Jörg" not in html
    assert client.get(f"/account/attendance/{stage['event'].slug}/certificate.pdf").status_code == 404


def test_slide_downloads_are_counted(app: Any, client: Any, slides_stage: Any) -> None:
    login(client, slides_stage.speaker.email)
    token = csrf_token(client, f"/events/{slides_stage.event.slug}/sessions/{slides_stage.session.id}")
    response = upload(client, slides_stage.session.id, "folien.pdf", pdf_bytes(), csrf=token)
    assert response.status_code == 201, response.get_data(as_text=True)
    presentation_id = response.get_json()["presentation"]["id"] if "presentation" in response.get_json() \
        else response.get_json()["id"]
    presentation_services.wait_for_background_tasks()
    url = f"/api/v1/sessions/{slides_stage.session.id}/presentations/{presentation_id}/download"
    for headers in ({}, {}, {}, {"Range": "bytes=0-9"}):  # a viewer's range request is not counted
        response = client.get(url, headers=headers)
        assert response.status_code == (206 if headers else 200)
        response.get_data()
        response.close()
    collector(app).sample()
    from conference.attendance import services

    figures = {f.session_id: f for f in services.session_figures(slides_stage.event)}
    assert figures[slides_stage.session.id].slide_downloads == 3
    assert db.session.scalar(select(ConferenceSession.id).where(ConferenceSession.id == slides_stage.session.id))


def test_who_is_where_now_lists_people_online(client: Any, stage: dict[str, Any], socket_for: Any) -> None:
    first = stage["sessions"][0]
    joerg, zoe = stage["people"][0], stage["people"][2]
    for user, room in ((joerg, f"session:{first.id}"), (joerg, f"session:{first.id}"), (zoe, "lobby:tagung")):
        assert socket_for(user).emit("join", {"room": room}, callback=True)["ok"] is True
    login(client, stage["organiser"].email)
    rooms = {r["room"]: r for r in client.get("/manage/events/tagung/attendance/live.json").get_json()["rooms"]}
    assert (rooms[f"session:{first.id}"]["online"], rooms[f"session:{first.id}"]["people"]) == (1, ["Jörg Müller"])
    assert rooms["lobby:tagung"]["people"] == ["Zoë Brandt"] and "ids" not in rooms["lobby:tagung"]
    html = client.get("/manage/events/tagung/attendance").get_data(as_text=True)
    assert 'id="figure-online">2<' in html and '<td class="people">Jörg Müller</td>' in html
