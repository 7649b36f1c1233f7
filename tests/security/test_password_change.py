"""A password change (or "log out everywhere") ends every other access: logins, API tokens, open sockets.

Someone who learnt the old password, and logged in or minted a token with it, must be out the moment the owner
changes it. The owner's own browser, and its live connection, stay.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from flask_socketio import SocketIOTestClient
from sqlalchemy import select

from conference.auth.models import ApiToken, LoginSession
from conference.extensions import db, socketio
from tests.fixtures.accounts import PASSWORD, csrf_token, login
from tests.security.conftest import Evidence, StateGuard, World, assert_refused, scalar_count

NEW_PASSWORD = "a-brand-new-password-1"


def browser(world: World, email: str, agent: str) -> FlaskClient:
    client = world.app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    assert login(client, email).status_code == 302
    return client


def live(world: World, client: FlaskClient | None = None, token: str | None = None) -> SocketIOTestClient:
    if client is not None:
        socket = socketio.test_client(world.app, flask_test_client=client)
    else:
        socket = socketio.test_client(world.app, auth={"token": token})
    assert socket.is_connected()
    assert socket.emit("join", {"room": "lobby:alpha"}, callback=True)["ok"] is True
    return socket


def assert_locked_out(world: World, there: FlaskClient, token: str, evidence: Evidence) -> None:
    """The other browser is logged out and cannot mint a token; the API token is refused."""
    page = there.get("/account")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    tokens_before = scalar_count(ApiToken)
    minted = there.post("/account/tokens", data={"csrf_token": csrf_token(there, "/login"), "name": "stolen"})
    evidence.add("variants")
    assert minted.status_code == 302 and "/login" in minted.headers["Location"], minted.status_code
    assert scalar_count(ApiToken) == tokens_before
    api = world.app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert_refused(api, 401, evidence, "API token issued under the old password")


def test_password_change_ends_other_logins_tokens_and_sockets(world: World, evidence: Evidence) -> None:
    here = browser(world, "attendee@example.org", "Here/1.0")
    there = browser(world, "attendee@example.org", "There/2.0")  # e.g. someone who knew the old password
    token = world.tokens["attendee"]
    here_socket, there_socket, token_socket = live(world, here), live(world, there), live(world, token=token)
    other_person = live(world, token=world.tokens["speaker"])

    changed = here.post("/account", data={"csrf_token": csrf_token(here, "/account"),
                                          "current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 302
    assert_locked_out(world, there, token, evidence)
    assert not there_socket.is_connected()
    assert not token_socket.is_connected()
    # This browser stays logged in, its socket stays, and other people are untouched.
    assert here.get("/account").status_code == 200
    assert here_socket.is_connected()
    assert here_socket.emit("chat:send", {"room": "lobby:alpha", "text": "noch da", "client_id": "pw-1"},
                            callback=True)["ok"] is True
    assert other_person.is_connected()
    # The old password opens nothing; the new one does.
    assert login(world.app.test_client(), "attendee@example.org").status_code == 400
    assert login(world.app.test_client(), "attendee@example.org", NEW_PASSWORD).status_code == 302
    evidence.add("variants", 3)


def test_log_out_everywhere_ends_every_login_token_and_socket(world: World, evidence: Evidence) -> None:
    here = browser(world, "attendee@example.org", "Here/1.0")
    there = browser(world, "attendee@example.org", "There/2.0")
    token = world.tokens["attendee"]
    sockets = [live(world, here), live(world, there), live(world, token=token)]
    response = here.post("/account/logout-everywhere", data={"csrf_token": csrf_token(here, "/account")})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    for client in (here, there):
        assert_locked_out(world, client, token, evidence)
    assert [socket.is_connected() for socket in sockets] == [False, False, False]
    db.session.expire_all()
    user_id = world.users["attendee"].id
    assert scalar_count(LoginSession, LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)) == 0
    assert scalar_count(ApiToken, ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)) == 0
    # Nothing else changed: the password still works.
    assert login(world.app.test_client(), "attendee@example.org").status_code == 302


def test_account_page_lists_logins_and_tokens_and_ends_one(world: World, guard: StateGuard,
                                                         evidence: Evidence) -> None:
    here = browser(world, "attendee@example.org", "Firefox/Here")
    there = browser(world, "attendee@example.org", "Chromium/There")
    here_socket, there_socket = live(world, here), live(world, there)
    page = here.get("/account").get_data(as_text=True)
    assert "Firefox/Here" in page and "Chromium/There" in page
    assert page.count("this device") == 1
    token_prefix = db.session.scalar(select(ApiToken.prefix).where(ApiToken.user_id == world.users["attendee"].id))
    assert token_prefix in page
    assert "Log out everywhere" in page

    there_id = db.session.scalar(select(LoginSession.id).where(LoginSession.user_agent == "Chromium/There"))
    ended = here.post(f"/account/logins/{there_id}/end", data={"csrf_token": csrf_token(here, "/account")})
    assert ended.status_code == 303 and ended.headers["Location"] == "/account"
    assert there.get("/account").status_code == 302
    assert not there_socket.is_connected()
    assert here_socket.is_connected() and here.get("/account").status_code == 200
    assert "Chromium/There" not in here.get("/account").get_data(as_text=True)

    # Another person's login is not found, and stays as it was.
    foreign = db.session.scalar(select(LoginSession.id).where(
        LoginSession.user_id == world.users["other_speaker"].id, LoginSession.ended_at.is_(None)))
    guard.take()
    response = here.post(f"/account/logins/{foreign}/end", data={"csrf_token": csrf_token(here, "/account")})
    assert_refused(response, 404, evidence, "end another person's login")
    guard.assert_unchanged("end another person's login")
