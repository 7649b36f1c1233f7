"""People routes: who may see and export the attendee list, registration with answers, the public list."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from conference.core.permissions import Role
from conference.extensions import db
from conference.people import services
from conference.people.models import RegistrationAnswer, RegistrationSettings
from tests.fixtures.accounts import csrf_token, login

SECTORS = "Wirtschaft\nWissenschaft\nPolitik und Verwaltung\nSonstiges"


@pytest.fixture
def world(create_event, person):
    event = create_event("people-event")
    other = create_event("other-event")
    services.update_settings(event, asks_organisation=True, asks_sector=True, sectors=SECTORS,
                             asks_listing_consent=True, has_public_list=True)
    db.session.commit()
    users = {
        "attendee": person(event, Role.ATTENDEE, email="att@example.org", name="Anna Attendee"),
        "speaker": person(event, Role.SPEAKER, email="spk@example.org", name="Sam Speaker"),
        "organiser_b": person(other, Role.ORGANISER, email="orgb@example.org", name="Otto Other"),
        "organiser": person(event, Role.ORGANISER, email="org@example.org", name="Olga Organiser"),
        "outsider": person(event, None, email="out@example.org", name="Oscar Outsider"),
    }
    services.save_answers(event, user=users["attendee"], organisation="@Stadt", sector="Wissenschaft",
                          is_listed=True)
    services.save_answers(event, user=users["speaker"], organisation="Geheim GmbH", sector="Wirtschaft",
                          is_listed=False)
    db.session.commit()
    return event, users


def _client(app, users, who):
    client = app.test_client()
    if who != "anonymous":
        login(client, users[who].email)
    return client


ORGANISER_PAGES = ["/manage/events/people-event/attendees", "/manage/events/people-event/attendees.csv",
                   "/manage/events/people-event/attendees.xlsx",
                   "/manage/events/people-event/registration-questions"]


@pytest.mark.parametrize("url", ORGANISER_PAGES)
@pytest.mark.parametrize(("who", "expected"), [("anonymous", 302), ("attendee", 403), ("speaker", 403),
                                               ("organiser_b", 403), ("organiser", 200)])
def test_organiser_pages_permissions(app, world, url, who, expected) -> None:
    _event, users = world
    response = _client(app, users, who).get(url)
    assert response.status_code == expected
    if who == "anonymous":
        assert "/login" in response.headers["Location"]
    if expected != 200:
        assert b"Geheim GmbH" not in response.data and b"att@example.org" not in response.data


def test_attendee_list_shows_and_filters(app, world) -> None:
    _event, users = world
    client = _client(app, users, "organiser")
    html = client.get("/manage/events/people-event/attendees").get_data(as_text=True)
    assert "Anna Attendee" in html and "Geheim GmbH" in html and "Oscar Outsider" not in html
    html = client.get("/manage/events/people-event/attendees?sector=Wirtschaft").get_data(as_text=True)
    assert "Sam Speaker" in html and "Anna Attendee" not in html
    html = client.get("/manage/events/people-event/attendees?role=organiser&q=olga").get_data(as_text=True)
    assert "Olga Organiser" in html and "Sam Speaker" not in html


@pytest.mark.parametrize("query", ["?q=" + "x" * 5000, "?sector=%00%ff", "?role[]=1&q=%", "?q=<script>alert(1)</script>"])
def test_attendee_list_garbage_no_5xx(app, world, query) -> None:
    _event, users = world
    client = _client(app, users, "organiser")
    for path in ("attendees", "attendees.csv", "attendees.xlsx"):
        response = client.get(f"/manage/events/people-event/{path}{query}")
        assert response.status_code in (200, 400)  # a NUL byte in the query is refused before the view
        assert b"<script>alert(1)" not in response.data


def test_csv_and_xlsx_downloads(app, world) -> None:
    _event, users = world
    client = _client(app, users, "organiser")
    response = client.get("/manage/events/people-event/attendees.csv?sector=Wissenschaft")
    assert response.headers["Content-Disposition"] == "attachment; filename=people-event-attendees.csv"
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [r[:4] for r in rows[1:]] == [["Anna Attendee", "att@example.org", "'@Stadt", "Wissenschaft"]]
    response = client.get("/manage/events/people-event/attendees.xlsx")
    sheet = load_workbook(io.BytesIO(response.data)).active
    organisations = [row[2].value for row in sheet.iter_rows(min_row=2)]
    assert "'@Stadt" in organisations and "Geheim GmbH" in organisations


def test_question_settings_need_csrf(app, world) -> None:
    _event, users = world
    client = _client(app, users, "organiser")
    response = client.post("/manage/events/people-event/registration-questions",
                           data={"asks_organisation": "y", "sectors": "A"})
    assert response.status_code == 400
    assert db.session.get(RegistrationSettings, world[0].id).sectors == SECTORS


def test_question_settings_saved_and_refused(app, world) -> None:
    event, users = world
    client = _client(app, users, "organiser")
    token = csrf_token(client, "/manage/events/people-event/registration-questions")
    response = client.post("/manage/events/people-event/registration-questions", data={
        "csrf_token": token, "asks_sector": "y", "sectors": "Industrie\nHochschule", "has_public_list": "y"})
    assert response.status_code == 400 and b"consent" in response.data
    response = client.post("/manage/events/people-event/registration-questions", data={
        "csrf_token": token, "asks_sector": "y", "sectors": "Industrie\nHochschule"})
    assert response.status_code == 303
    db.session.expire_all()
    assert services.settings_for(event).sector_list == ["Industrie", "Hochschule"]


def test_body_limit_on_forms(app, world) -> None:
    _event, users = world
    client = _client(app, users, "organiser")
    big = "x" * (app.config["MAX_FORM_BYTES"] + 10)
    for url in ("/manage/events/people-event/registration-questions", "/events/people-event/registration"):
        assert client.post(url, data={"sectors": big, "organisation": big}).status_code == 413


def test_register_with_answers_through_the_event_page(app, world, create_user) -> None:
    event, _users = world
    user = create_user("new@example.org", name="Nina Neu")
    client = app.test_client()
    login(client, user.email)
    page = client.get("/events/people-event/").get_data(as_text=True)
    assert 'action="/events/people-event/registration"' in page and "Politik und Verwaltung" in page
    token = csrf_token(client, "/events/people-event/")
    response = client.post("/events/people-event/registration", data={
        "csrf_token": token, "organisation": "Landkreis", "sector": "Mars", "is_listed": "y"})
    assert response.status_code == 400
    user.forget_roles()
    assert user.role_in(event) is None
    response = client.post("/events/people-event/registration", data={
        "csrf_token": token, "organisation": "Landkreis", "sector": "Politik und Verwaltung", "is_listed": "y"})
    assert response.status_code == 303
    user.forget_roles()
    assert user.role_in(event) == Role.ATTENDEE
    assert client.get("/events/people-event/participants").get_data(as_text=True).count("Landkreis") == 1


def test_registration_with_code_counts_wrong_codes(app, world, create_user) -> None:
    event, _users = world
    event.registration_mode, event.registration_code = "code", "abcd-efgh-jkmn"
    db.session.commit()
    user = create_user()
    client = app.test_client()
    login(client, user.email)
    token = csrf_token(client, "/events/people-event/registration")
    response = client.post("/events/people-event/registration", data={"csrf_token": token, "code": "wrong"})
    assert response.status_code == 400
    response = client.post("/events/people-event/registration", data={"csrf_token": token, "code": "ABCD EFGH JKMN",
                                                                      "organisation": "Amt"})
    assert response.status_code == 303


def test_registration_needs_login_and_csrf(app, world) -> None:
    _event, users = world
    anonymous = app.test_client().post("/events/people-event/registration")
    assert anonymous.status_code in (302, 400)  # no CSRF token (checked first), else the login
    client = _client(app, users, "attendee")
    assert client.post("/events/people-event/registration", data={"organisation": "X"}).status_code == 400
    assert services.answer_of(world[0], users["attendee"]).organisation == "@Stadt"


def test_member_changes_answers(app, world) -> None:
    event, users = world
    client = _client(app, users, "attendee")
    token = csrf_token(client, "/events/people-event/registration")
    response = client.post("/events/people-event/registration", data={"csrf_token": token, "organisation": "Neu",
                                                                      "sector": ""})
    assert response.status_code == 303
    db.session.expire_all()
    answer = services.answer_of(event, users["attendee"])
    assert (answer.organisation, answer.sector, answer.is_listed) == ("Neu", None, False)


def test_public_list_only_consented_and_only_when_on(app, world) -> None:
    event, users = world
    html = app.test_client().get("/events/people-event/participants").get_data(as_text=True)
    assert "Anna Attendee" in html and "@Stadt" in html
    assert "Sam Speaker" not in html and "Geheim GmbH" not in html and "att@example.org" not in html
    services.update_settings(event, asks_organisation=True, asks_sector=True, sectors=SECTORS,
                             asks_listing_consent=True, has_public_list=False)
    db.session.commit()
    assert app.test_client().get("/events/people-event/participants").status_code == 404


def test_public_list_of_unpublished_event_is_404(app, world, create_event) -> None:
    event, _users = world
    event.is_published = False
    db.session.commit()
    assert app.test_client().get("/events/people-event/participants").status_code == 404


def test_public_list_escapes_names(app, world, person) -> None:
    event, _users = world
    evil = person(event, Role.ATTENDEE, name="<img src=x onerror=alert(1)>")
    services.save_answers(event, user=evil, organisation="<b>x</b>", is_listed=True)
    db.session.commit()
    html = app.test_client().get("/events/people-event/participants").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "<b>x</b>" not in html


def test_answers_in_account_export_and_gone_after_deletion(app, world) -> None:
    _event, users = world
    client = _client(app, users, "attendee")
    data = client.get("/account/data.json").get_json()
    assert data["registration_answers"][0]["organisation"] == "@Stadt"
    assert db.session.query(RegistrationAnswer).filter_by(user_id=users["attendee"].id).count() == 1
