"""Event pages, registration for events, organiser settings and the events API."""

from __future__ import annotations

import re
from datetime import date

import pytest

from conference.core.permissions import Role
from conference.events.models import EventMembership
from conference.extensions import db
from tests.fixtures.accounts import csrf_token, login


def test_home_lists_upcoming_and_past_events(client, create_event) -> None:
    create_event("future-conf", title="Zukunftskonferenz", start=date(2099, 5, 1))
    create_event("past-conf", title="Konferenz von gestern", start=date(2020, 5, 1))
    html = client.get("/").get_data(as_text=True)
    assert html.index("Zukunftskonferenz") < html.index("Past conferences") < html.index("Konferenz von gestern")


def test_home_opens_single_event_directly(client, create_event) -> None:
    create_event("only-one")
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/events/only-one/"


def test_unpublished_event_hidden_from_attendees_visible_to_organisers(client, create_event, person) -> None:
    event = create_event("draft-conf", published=False)
    attendee = person(event, Role.ATTENDEE)
    organiser = person(event, Role.ORGANISER)
    assert client.get("/events/draft-conf/").status_code == 404
    assert client.get("/api/v1/events").json == {"events": []}
    login(client, attendee.email)
    assert client.get("/events/draft-conf/").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, organiser.email)
    assert client.get("/events/draft-conf/").status_code == 200


def test_api_events_shape(client, create_event) -> None:
    create_event("api-conf", title="API-Konferenz", start=date(2027, 3, 18), end=date(2027, 3, 19))
    assert client.get("/api/v1/events").json == {"events": [{
        "slug": "api-conf", "title": "API-Konferenz", "description": "", "start": "2027-03-18",
        "end": "2027-03-19", "timezone": "Europe/Berlin", "language": "de", "registration": "open",
        "links": "public",
        "published": True}]}


def test_open_registration(client, create_event, create_user) -> None:
    event = create_event("open-conf")
    user = create_user()
    login(client, user.email)
    response = client.post("/events/open-conf/register", data={"csrf_token": csrf_token(client, "/events/open-conf/")})
    assert response.status_code == 303
    membership = db.session.query(EventMembership).one()
    assert (membership.event_id, membership.user_id, membership.role) == (event.id, user.id, "attendee")


@pytest.mark.parametrize(("code", "status", "members"), [("", 400, 0), ("wrong", 400, 0), ("geheim-2027", 303, 1)])
def test_registration_with_code(client, create_event, create_user, code, status, members) -> None:
    create_event("code-conf", registration_mode="code", registration_code="geheim-2027")
    user = create_user()
    login(client, user.email)
    token = csrf_token(client, "/events/code-conf/")
    response = client.post("/events/code-conf/register", data={"csrf_token": token, "code": code})
    assert response.status_code == status
    assert db.session.query(EventMembership).count() == members


def test_closed_registration_refused(client, create_event, create_user) -> None:
    create_event("closed-conf", registration_mode="closed")
    user = create_user()
    login(client, user.email)
    response = client.post("/events/closed-conf/register",
                           data={"csrf_token": csrf_token(client, "/events/closed-conf/")})
    assert response.status_code == 403
    assert db.session.query(EventMembership).count() == 0


def test_registration_requires_login_and_csrf(client, create_event, create_user) -> None:
    create_event("conf-x")
    assert client.post("/events/conf-x/register").status_code == 400  # CSRF first
    token = csrf_token(client, "/events/conf-x/")
    response = client.post("/events/conf-x/register", data={"csrf_token": token})
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert db.session.query(EventMembership).count() == 0


def test_organiser_changes_settings(client, create_event, person) -> None:
    event = create_event("settings-conf")
    organiser = person(event, Role.ORGANISER)
    login(client, organiser.email)
    token = csrf_token(client, "/manage/events/settings-conf/")
    response = client.post("/manage/events/settings-conf/", data={
        "csrf_token": token, "title": "Neuer Titel", "description": "", "start_date": "2027-03-18",
        "end_date": "2027-03-18", "timezone": "Europe/Berlin", "language": "de", "registration_mode": "code",
        "registration_code": "revier-2027", "is_published": "y"})
    assert response.status_code == 303
    db.session.refresh(event)
    assert (event.title, event.registration_mode, event.registration_code) == ("Neuer Titel", "code", "revier-2027")


def test_empty_registration_code_gets_a_random_one(client, create_event, person) -> None:
    event = create_event("settings-conf")
    login(client, person(event, Role.ORGANISER).email)
    response = client.post("/manage/events/settings-conf/", data={
        "csrf_token": csrf_token(client, "/manage/events/settings-conf/"), "title": "Testkonferenz",
        "description": "", "start_date": "2027-03-18", "end_date": "2027-03-18", "timezone": "Europe/Berlin",
        "language": "de", "registration_mode": "code", "registration_code": ""})
    assert response.status_code == 303
    db.session.refresh(event)
    assert re.fullmatch(r"[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}-[a-hjkmnp-z2-9]{4}", event.registration_code or "")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("end_date", "2027-03-01", "The event cannot end before it starts."),
    ("timezone", "Mars/Olympus", "Unknown time zone."),
    ("registration_code", "abc-12345", "The registration code must have at least 10 characters"),
])
def test_organiser_invalid_settings_change_nothing(client, create_event, person, field, value, message) -> None:
    event = create_event("settings-conf")
    organiser = person(event, Role.ORGANISER)
    login(client, organiser.email)
    data = {"csrf_token": csrf_token(client, "/manage/events/settings-conf/"), "title": "Neuer Titel",
            "description": "", "start_date": "2027-03-18", "end_date": "2027-03-18", "timezone": "Europe/Berlin",
            "language": "de", "registration_mode": "code", "registration_code": "revier-2027"}
    data[field] = value
    response = client.post("/manage/events/settings-conf/", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.refresh(event)
    assert event.title == "Testkonferenz"


def test_organiser_gives_role(client, create_event, person, create_user) -> None:
    event = create_event("people-conf")
    organiser = person(event, Role.ORGANISER)
    speaker = create_user("speaker@example.org")
    login(client, organiser.email)
    token = csrf_token(client, "/manage/events/people-conf/people")
    response = client.post("/manage/events/people-conf/people",
                           data={"csrf_token": token, "email": "speaker@example.org", "role": "moderator"})
    assert response.status_code == 303
    db.session.expire_all()
    assert speaker.role_in(event) == Role.MODERATOR


def test_organiser_cannot_demote_self(client, create_event, person) -> None:
    event = create_event("people-conf")
    organiser = person(event, Role.ORGANISER)
    login(client, organiser.email)
    token = csrf_token(client, "/manage/events/people-conf/people")
    response = client.post("/manage/events/people-conf/people",
                           data={"csrf_token": token, "email": organiser.email, "role": "attendee"})
    assert response.status_code == 400
    db.session.expire_all()
    organiser.forget_roles()
    assert organiser.role_in(event) == Role.ORGANISER


ROUTES = [("GET", "/manage/events/{slug}/"), ("POST", "/manage/events/{slug}/"),
          ("GET", "/manage/events/{slug}/people"), ("POST", "/manage/events/{slug}/people")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(("role", "expected"), [
    ("anonymous", 302), (Role.ATTENDEE, 403), (Role.SPEAKER, 403), (Role.MODERATOR, 403),
    ("other-organiser", 403), (Role.ORGANISER, 200), ("admin", 200)])
def test_manage_routes_by_role(client, create_event, person, create_user, method, path, role, expected) -> None:
    event = create_event("matrix-conf")
    other = create_event("other-conf")
    if role == "admin":
        login(client, create_user(is_admin=True).email)
    elif role == "other-organiser":
        login(client, person(other, Role.ORGANISER).email)
    elif role != "anonymous":
        login(client, person(event, role).email)
    url = path.format(slug=event.slug)
    if method == "GET":
        response = client.get(url)
    else:
        response = client.post(url, data={"csrf_token": csrf_token(client, "/login")})
    if expected == 200 and method == "POST":
        # allowed: settings keep their values when fields are absent; the people form needs an e-mail
        expected = 303 if path.endswith("{slug}/") else 400
    assert response.status_code == expected
