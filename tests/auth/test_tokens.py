"""API tokens: issue, use on JSON endpoints, revoke."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conference.auth import logins
from conference.auth.models import ApiToken, hash_secret
from conference.core.after_commit import commit
from conference.extensions import db
from tests.fixtures.accounts import PASSWORD, csrf_token, login


def issue(client, email: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def test_issue_token_and_use_it(client, create_user) -> None:
    user = create_user("api@example.org", name="API Person")
    response = issue(client, "api@example.org")
    assert response.status_code == 201
    token = response.json["token"]
    assert token.startswith("cft_")
    stored = db.session.query(ApiToken).one()
    assert stored.token_hash == hash_secret(token) != token
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json["email"] == "api@example.org"
    assert me.json["id"] == user.id
    assert "no-store" in me.headers["Cache-Control"]


def test_wrong_credentials_same_answer(client, create_user) -> None:
    create_user("api@example.org")
    wrong = issue(client, "api@example.org", "wrong-password")
    unknown = issue(client, "nobody@example.org", "wrong-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json == {"ok": False, "error": "invalid_credentials",
                                          "message": "E-mail or password is not correct."}


@pytest.mark.parametrize(("body", "kwargs", "field"), [
    (None, {"data": "not json", "content_type": "application/json"}, None),
    (None, {"data": "email=x", "content_type": "application/x-www-form-urlencoded"}, None),
    ([1, 2], {}, None),
    ({"email": "a@example.org"}, {}, "password"),
    ({"email": 5, "password": "x"}, {}, "email"),
    ({"email": "a@example.org", "password": True}, {}, "password"),
])
def test_token_endpoint_rejects_bad_bodies(client, create_user, body, kwargs, field) -> None:
    create_user("a@example.org")
    response = client.post("/api/v1/auth/token", json=body, **kwargs) if body is not None else \
        client.post("/api/v1/auth/token", **kwargs)
    assert response.status_code == 400
    assert response.json["ok"] is False
    assert response.json.get("field") == field
    assert db.session.query(ApiToken).count() == 0


def test_unauthenticated_api_gets_401_json(client) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json["error"] == "unauthenticated"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer cft_forged"}).status_code == 401


def test_revoke_own_token_via_api(client, create_user) -> None:
    create_user("api@example.org")
    token = issue(client, "api@example.org").json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    token_id = client.get("/api/v1/auth/tokens", headers=headers).json["tokens"][0]["id"]
    assert client.delete(f"/api/v1/auth/tokens/{token_id}", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_cannot_revoke_someone_elses_token(client, create_user) -> None:
    create_user("a@example.org")
    create_user("b@example.org")
    token_a = issue(client, "a@example.org").json["token"]
    token_b = issue(client, "b@example.org").json["token"]
    id_b = client.get("/api/v1/auth/tokens", headers={"Authorization": f"Bearer {token_b}"}).json["tokens"][0]["id"]
    response = client.delete(f"/api/v1/auth/tokens/{id_b}", headers={"Authorization": f"Bearer {token_a}"})
    assert response.status_code == 404
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token_b}"}).status_code == 200


def test_revoke_token_in_browser(client, create_user) -> None:
    create_user("a@example.org")
    token = issue(client, "a@example.org").json["token"]
    login(client, "a@example.org")
    token_id = db.session.query(ApiToken).one().id
    csrf = csrf_token(client, "/account")
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 400  # no CSRF token
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_create_token_in_browser_shows_it_once(client, create_user) -> None:
    create_user("a@example.org")
    login(client, "a@example.org")
    csrf = csrf_token(client, "/account")
    response = client.post("/account/tokens", data={"csrf_token": csrf, "name": "Laptop"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "cft_" in html
    assert db.session.query(ApiToken).one().name == "Laptop"
    assert "cft_" not in client.get("/account").get_data(as_text=True).split("<main")[1].split("Starts with")[0]


def test_bearer_request_needs_no_csrf_but_cookie_request_does(client, create_user, create_event) -> None:
    create_user("a@example.org")
    token = issue(client, "a@example.org").json["token"]
    token_id = db.session.query(ApiToken).one().id
    login(client, "a@example.org")
    assert client.delete(f"/api/v1/auth/tokens/{token_id}").status_code == 400  # cookie only: CSRF required
    assert client.delete(f"/api/v1/auth/tokens/{token_id}",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 204


def test_api_token_owner_answers_only_for_active_tokens_of_enabled_accounts(app, create_user) -> None:
    user, other = create_user(), create_user()
    token, second = logins.issue_api_token(user), logins.issue_api_token(other)
    commit()
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == user.id))
    assert logins.api_token_owner(token) == (user.id, token_id)
    assert logins.api_token_owner(second)[0] == other.id
    assert logins.api_token_owner(token + "x") is None
    assert logins.api_token_owner("not-a-token") is None
    assert logins.api_token_owner(logins.TOKEN_PREFIX + "x" * 200) is None
    logins.revoke_api_token(user, token_id=token_id)
    commit()
    assert logins.api_token_owner(token) is None
    other.is_disabled = True
    commit()
    assert logins.api_token_owner(second) is None
