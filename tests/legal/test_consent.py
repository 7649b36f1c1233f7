"""Consent to the privacy notice: at registration, again after a new version, what waits until then."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIOTestClient
from sqlalchemy import func, select

from conference.auth.models import ApiToken, User
from conference.core.mail import OutboxMessage
from conference.core.permissions import Role
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.legal import services
from conference.legal.models import PrivacyConsent
from tests.fixtures.accounts import PASSWORD, api_token_for, csrf_token, login
from tests.legal.conftest import accept_notice


def _register(client: FlaskClient, email: str, **extra: str) -> Any:
    token = csrf_token(client, "/register")
    return client.post("/register", data={"name": "Erika Mustermann", "email": email, "password": PASSWORD,
                                          "csrf_token": token, **extra})


def _consents(user_id: int | None = None) -> list[tuple[int, int, str]]:
    query = select(PrivacyConsent.user_id, PrivacyConsent.legal_text_id, PrivacyConsent.source)
    if user_id is not None:
        query = query.where(PrivacyConsent.user_id == user_id)
    return [tuple(row) for row in db.session.execute(query.order_by(PrivacyConsent.id))]  # type: ignore[misc]


def _count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_registration_requires_the_checkbox_when_a_notice_exists(client: FlaskClient,
                                                                   publish: Callable[..., None]) -> None:
    publish(privacy="# Datenschutz\n\nWir speichern Ihren Namen.")
    page = client.get("/register").get_data(as_text=True)
    assert 'name="privacy_consent"' in page and 'href="/datenschutz"' in page
    users = _count(User)
    response = _register(client, "erika@example.org")
    assert response.status_code == 400
    assert "Please read the privacy notice and agree to it." in response.get_data(as_text=True)
    assert (_count(User), _count(OutboxMessage), _consents()) == (users, 0, [])


def test_registration_records_consent_to_the_current_version(client: FlaskClient,
                                                             publish: Callable[..., None]) -> None:
    publish(privacy="Version eins")
    publish(privacy="Version zwei")
    notice = services.current_privacy_notice()
    assert notice is not None and notice.number == 2
    response = _register(client, "erika@example.org", privacy_consent="y")
    assert response.status_code == 302 and response.headers["Location"] == "/register/sent"
    user = db.session.scalar(select(User).where(User.email == "erika@example.org"))
    assert user is not None
    assert _consents(user.id) == [(user.id, notice.id, "registration")]
    consent = db.session.scalar(select(PrivacyConsent))
    assert consent is not None and consent.accepted_at >= user.created_at
    login(client, user.email)
    assert client.get("/").status_code == 200  # not asked again


def test_registration_without_a_notice_has_no_checkbox(client: FlaskClient) -> None:
    assert 'name="privacy_consent"' not in client.get("/register").get_data(as_text=True)
    assert _register(client, "erika@example.org").status_code == 302
    assert _count(User) == 1 and _consents() == []


def test_registration_of_a_taken_address_answers_alike_and_records_nothing(
        client: FlaskClient, publish: Callable[..., None], create_user: Callable[..., User]) -> None:
    publish(privacy="Datenschutz")
    create_user("taken@example.org")
    refused = _register(client, "taken@example.org")  # no checkbox: refused as for a new address
    assert refused.status_code == 400 and "Please read the privacy notice" in refused.get_data(as_text=True)
    response = _register(client, "taken@example.org", privacy_consent="y")
    assert response.status_code == 302 and response.headers["Location"] == "/register/sent"
    assert _consents() == []  # a stranger cannot accept for the owner


def test_new_version_asks_at_next_page_view_and_holds_account_features(
        client: FlaskClient, publish: Callable[..., None], create_event: Callable[..., Event],
        create_user: Callable[..., User]) -> None:
    event = create_event("tagung")
    publish(privacy="Version eins")
    user = create_user("leser@example.org")
    login(client, user.email)
    assert accept_notice(client).status_code == 303
    assert client.get("/events/tagung/").status_code == 200
    publish(privacy="Version zwei")

    first = client.get("/events/tagung/")
    assert first.status_code == 303
    assert first.headers["Location"] == "/datenschutz/zustimmung?next=/events/tagung/"
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert "Version zwei" in page and 'href="/events/tagung/">Not now' in page
    # After "not now": public pages are readable (with a reminder), account features are not.
    public = client.get("/events/tagung/")
    assert public.status_code == 200 and "The privacy notice has a new version" in public.get_data(as_text=True)
    assert client.get("/events/tagung/agenda").status_code == 200
    html = public.get_data(as_text=True)
    assert "Test Person" in html and ">My agenda<" not in html  # served as to a visitor; the name stays in the nav
    token = csrf_token(client, "/events/tagung/")
    for url in ("/account", "/events/tagung/my-agenda", "/manage/events/tagung/"):
        held = client.get(url, follow_redirects=True)
        assert (held.request.path, held.request.args.get("next")) == ("/datenschutz/zustimmung", url), url
    assert client.post("/events/tagung/register", data={"csrf_token": token}).status_code == 303
    assert client.post("/account/tokens", data={"csrf_token": token, "name": "x"}).status_code == 303
    assert _count(EventMembership) == 0 and _count(ApiToken) == 0
    by_cookie = client.get("/api/v1/me")
    assert by_cookie.status_code == 403 and by_cookie.get_json()["error"] == "privacy_consent_required"
    # Leaving and the language switch still work.
    assert client.post("/language", data={"csrf_token": token, "locale": "en", "next": "/"}).status_code in (302, 303)

    assert accept_notice(client).status_code == 303
    assert [number for number in (c["privacy_notice_version"] for c in services.consents_payload(user))] == [1, 2]
    assert client.get("/account").status_code == 200
    assert client.post("/events/tagung/register", data={"csrf_token": token}).status_code == 303
    assert db.session.scalar(select(EventMembership.role).where(EventMembership.event_id == event.id)) == "attendee"


def test_api_tokens_keep_working_while_consent_is_pending(client: FlaskClient, publish: Callable[..., None],
                                                          create_user: Callable[..., User]) -> None:
    user = create_user("bot@example.org")
    token = api_token_for(user)
    publish(privacy="Datenschutz")
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_json()["email"] == "bot@example.org"


def test_stale_or_missing_version_is_not_accepted(client: FlaskClient, publish: Callable[..., None],
                                                  create_user: Callable[..., User]) -> None:
    publish(privacy="Version eins")
    user = create_user("leser@example.org")
    login(client, user.email)
    old_page = client.get("/datenschutz/zustimmung").get_data(as_text=True)
    assert 'name="notice_id"' in old_page
    old_id = services.current_privacy_notice().id  # type: ignore[union-attr]
    publish(privacy="Version zwei")
    token = csrf_token(client, "/impressum")
    stale = client.post("/datenschutz/zustimmung", data={"csrf_token": token, "notice_id": str(old_id)})
    assert stale.status_code == 303 and stale.headers["Location"] == "/datenschutz/zustimmung"
    assert "A newer version of the privacy notice" in client.get("/datenschutz/zustimmung").get_data(as_text=True)
    missing = client.post("/datenschutz/zustimmung", data={"csrf_token": token})
    assert missing.status_code == 400
    assert _consents() == []


def test_operator_created_account_is_asked_at_first_login(client: FlaskClient, publish: Callable[..., None],
                                                          runner: Any) -> None:
    publish(privacy="Datenschutz")
    result = runner.invoke(args=["users", "create", "--email", "neu@example.org", "--name", "Neu"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": "neu@example.org", "password": PASSWORD, "csrf_token": token,
                                           "next": "/impressum"})
    assert response.headers["Location"] == "/impressum"
    assert client.get("/").headers["Location"] == "/datenschutz/zustimmung?next=/"


def test_browser_socket_refused_until_accepted(app: Flask, publish: Callable[..., None],
                                               create_event: Callable[..., Event],
                                               person: Callable[..., User],
                                               socket_for: Callable[..., SocketIOTestClient]) -> None:
    user = person(create_event("tagung"), Role.ATTENDEE)
    publish(privacy="Datenschutz")
    assert not socket_for(user, browser=True).is_connected()
    assert socket_for(user).is_connected()  # an API token is not asked
    services.accept_privacy_notice(user, notice_id=services.current_privacy_notice().id)  # type: ignore[union-attr]
    db.session.commit()
    assert socket_for(user, browser=True).is_connected()


def test_my_data_lists_the_consents(client: FlaskClient, publish: Callable[..., None]) -> None:
    publish(privacy="Version eins")
    _register(client, "erika@example.org", privacy_consent="y")
    user = db.session.scalar(select(User).where(User.email == "erika@example.org"))
    assert user is not None
    login(client, user.email)
    data = client.get("/account/data.json").get_json()
    assert [(c["privacy_notice_version"], c["source"]) for c in data["privacy_consents"]] == [(1, "registration")]
