"""Registration, login, logout (including cookie replay), password change."""

from __future__ import annotations

from flask.testing import FlaskClient

from conference.auth.models import LoginSession, User
from conference.core.mail import OutboxMessage
from conference.extensions import db
from tests.fixtures.accounts import PASSWORD, csrf_token, login


def test_register_creates_unconfirmed_account_and_mails_the_link(client: FlaskClient) -> None:
    token = csrf_token(client, "/register")
    response = client.post("/register", data={"name": "Erika Mustermann", "email": "Erika@Example.org ",
                                              "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/register/sent"
    user = db.session.query(User).one()
    assert (user.email, user.name) == ("erika@example.org", "Erika Mustermann")
    assert user.password_hash.startswith("scrypt:")
    assert user.email_verified_at is None
    mail = db.session.query(OutboxMessage).one()
    assert mail.recipient == "erika@example.org" and "http://localhost/account/confirm/" in mail.body
    assert client.get("/account").status_code == 302  # registering does not log in (see the enumeration tests)
    assert login(client, "erika@example.org").status_code == 302
    assert "Please confirm your e-mail address" in client.get("/account").get_data(as_text=True)


def test_register_short_password_refused(client: FlaskClient) -> None:
    token = csrf_token(client, "/register")
    response = client.post("/register", data={"name": "X", "email": "x@example.org", "password": "short",
                                              "csrf_token": token})
    assert response.status_code == 400
    assert "at least 10 characters" in response.get_data(as_text=True)
    assert db.session.query(User).count() == 0


def test_register_existing_email_creates_nothing_and_tells_the_owner(client: FlaskClient, create_user) -> None:
    create_user("taken@example.org")
    token = csrf_token(client, "/register")
    response = client.post("/register", data={"name": "X", "email": "TAKEN@example.org", "password": PASSWORD,
                                              "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/register/sent"
    assert db.session.query(User).count() == 1
    mail = db.session.query(OutboxMessage).one()
    assert mail.recipient == "taken@example.org"
    assert "Someone tried to register with your e-mail address" in mail.subject


def test_register_without_csrf_token_refused(client: FlaskClient) -> None:
    response = client.post("/register", data={"name": "X", "email": "x@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert db.session.query(User).count() == 0


def test_login_same_message_for_unknown_user_and_wrong_password(client: FlaskClient, create_user) -> None:
    create_user("known@example.org")
    wrong_password = login(client, "known@example.org", "wrong-password-123")
    unknown_user = login(client, "nobody@example.org", "wrong-password-123")
    assert wrong_password.status_code == unknown_user.status_code == 400
    assert "E-mail or password is not correct." in wrong_password.get_data(as_text=True)
    assert "E-mail or password is not correct." in unknown_user.get_data(as_text=True)


def test_login_renews_session_and_redirects_only_locally(client: FlaskClient, create_user) -> None:
    create_user("a@example.org")
    client.get("/login")
    with client.session_transaction() as before:
        before["planted"] = "fixation"
    token = csrf_token(client)
    response = client.post("/login", data={"email": "a@example.org", "password": PASSWORD, "csrf_token": token,
                                           "next": "//evil.example/"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    with client.session_transaction() as after:
        assert "planted" not in after


def test_login_next_local_path_followed(client: FlaskClient, create_user) -> None:
    create_user("a@example.org")
    token = csrf_token(client)
    response = client.post("/login", data={"email": "a@example.org", "password": PASSWORD, "csrf_token": token,
                                           "next": "/account"})
    assert response.headers["Location"] == "/account"


def test_logout_ends_session_and_replayed_cookie_is_refused(client: FlaskClient, create_user) -> None:
    create_user("a@example.org")
    login(client, "a@example.org")
    cookie = client.get_cookie("conference_session")
    assert cookie is not None
    stolen = cookie.value
    token = csrf_token(client, "/account")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert db.session.query(LoginSession).one().ended_at is not None
    client.set_cookie("conference_session", stolen)
    response = client.get("/account")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_logout_over_get_not_allowed(client: FlaskClient, create_user) -> None:
    create_user("a@example.org")
    login(client, "a@example.org")
    assert client.get("/logout").status_code == 405
    assert client.get("/account").status_code == 200


def test_session_cookie_flags(client: FlaskClient, create_user) -> None:
    create_user("a@example.org")
    response = login(client, "a@example.org")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header
    secure = client.get("/login", base_url="https://localhost")
    assert secure.status_code == 200
    token = csrf_token(client, "/login")
    over_https = client.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                             data={"email": "a@example.org", "password": PASSWORD, "csrf_token": token})
    assert "Secure" in over_https.headers["Set-Cookie"]


def test_login_rate_limited_per_account(client: FlaskClient, create_user) -> None:
    create_user("a@example.org")
    statuses = [login(client, "a@example.org", f"wrong-password-{i}").status_code for i in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    # Even the right password is refused while the limit holds.
    assert login(client, "a@example.org").status_code == 429


def test_login_rate_limit_ignores_forwarded_for_without_trusted_proxy(client: FlaskClient) -> None:
    """With X-Forwarded-For believed, every try would come from a fresh address and the address limit would
    never be reached; without a trusted proxy all of them are one address."""
    client.application.config["LOGIN_FAILURE_LIMIT_ADDRESS"] = (5, 900)
    statuses = []
    for i in range(6):
        token = csrf_token(client)
        statuses.append(client.post("/login", headers={"X-Forwarded-For": f"10.0.0.{i}"}, data={
            "email": f"user{i % 5}@example.org", "password": "wrong-password-x", "csrf_token": token}).status_code)
    assert statuses == [400] * 5 + [429]  # the address may not guess at user0 a second time


def test_password_change(client: FlaskClient, create_user) -> None:
    create_user("a@example.org")
    login(client, "a@example.org")
    token = csrf_token(client, "/account")
    wrong = client.post("/account", data={"current_password": "nope-nope-nope", "new_password": "another-pass-1",
                                          "csrf_token": token})
    assert wrong.status_code == 400
    ok = client.post("/account", data={"current_password": PASSWORD, "new_password": "another-pass-1",
                                       "csrf_token": token})
    assert ok.status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert login(client, "a@example.org", "another-pass-1").status_code == 302
