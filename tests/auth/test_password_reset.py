"""Forgotten password: the link on the login page, the mail, the new password, and what it ends."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from conference.auth import passwords
from conference.auth.models import LoginSession, User
from conference.core.mail import OutboxMessage
from conference.extensions import db
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import PASSWORD, api_token_for, csrf_token, login

NEW_PASSWORD = "a-fresh-password-42"


@pytest.fixture
def app_settings(tmp_path: Path) -> dict[str, Any]:
    # Room for the timing rounds; the limits themselves are tested in tests/security/test_account_links.py.
    return settings_for_tests(tmp_path, MAIL_REQUEST_LIMIT_ACCOUNT=(100, 3600), MAIL_REQUEST_LIMIT_ADDRESS=(100, 3600))
RESET_LINK = re.compile(r"http://localhost(/account/reset/[^\s]+)")


def mails_to(address: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == address)
                                   .order_by(OutboxMessage.id)))


def ask_for_reset(client: FlaskClient, email: str) -> Any:
    answer = client.post("/login/forgot", data={"csrf_token": csrf_token(client, "/login/forgot"), "email": email})
    passwords.wait_for_reset_jobs()  # the lookup and the mail run after the answer
    return answer


def reset_path(mail: OutboxMessage) -> str:
    match = RESET_LINK.search(mail.body)
    assert match, mail.body
    return match.group(1)


def set_new_password(client: FlaskClient, path: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, path), "new_password": password})


def test_login_page_links_to_the_forgot_password_form(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/login/forgot"' in page
    form = client.get("/login/forgot")
    assert form.status_code == 200 and 'name="email"' in form.get_data(as_text=True)


def test_reset_link_sets_the_password_and_ends_every_other_access(
        app: Flask, create_user: Callable[..., User]) -> None:
    user = create_user("ada@example.org", verified=False)
    elsewhere = app.test_client()
    assert login(elsewhere, "ada@example.org").status_code == 302
    token = api_token_for(user)

    asker = app.test_client()
    answer = ask_for_reset(asker, "Ada@Example.org ")
    assert answer.status_code == 303 and answer.headers["Location"] == "/login/forgot/sent"
    [mail] = mails_to("ada@example.org")
    assert mail.subject == "Choose a new password" and "60 minutes" in mail.body
    path = reset_path(mail)
    form = asker.get(path)
    assert form.status_code == 200 and "ada@example.org" in form.get_data(as_text=True)

    done = set_new_password(asker, path)
    assert done.status_code == 303 and done.headers["Location"] == "/account"
    assert asker.get("/account").status_code == 200  # the browser that reset it is logged in
    page = elsewhere.get("/account")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    db.session.expire_all()
    assert db.session.get(User, user.id).is_verified  # the link proved the mailbox
    active = db.session.scalars(select(LoginSession).where(LoginSession.user_id == user.id,
                                                           LoginSession.ended_at.is_(None))).all()
    assert len(active) == 1
    assert login(app.test_client(), "ada@example.org", PASSWORD).status_code == 400
    assert login(app.test_client(), "ada@example.org", NEW_PASSWORD).status_code == 302


def test_too_short_new_password_is_refused_and_the_link_still_works(
        app: Flask, client: FlaskClient, create_user: Callable[..., User]) -> None:
    create_user("bob@example.org")
    ask_for_reset(client, "bob@example.org")
    path = reset_path(mails_to("bob@example.org")[0])
    short = set_new_password(client, path, "short")
    assert short.status_code == 400 and "at least" in short.get_data(as_text=True)
    assert login(app.test_client(), "bob@example.org", PASSWORD).status_code == 302
    assert set_new_password(client, path).status_code == 303


def test_known_and_unknown_addresses_get_the_same_answer(
        app: Flask, create_user: Callable[..., User]) -> None:
    """Same status, same redirect, same page, similar time; only the owner of a real account gets a mail."""
    create_user("known@example.org")
    timings: dict[str, list[float]] = {"known@example.org": [], "nobody@example.org": []}
    answers: dict[str, set[tuple[int, str]]] = {address: set() for address in timings}
    for _round in range(9):
        for address in timings:
            client = app.test_client()
            token = csrf_token(client, "/login/forgot")
            started = time.perf_counter()
            answer = client.post("/login/forgot", data={"csrf_token": token, "email": address})
            timings[address].append(time.perf_counter() - started)
            passwords.wait_for_reset_jobs()
            answers[address].add((answer.status_code, answer.headers["Location"]))
    assert answers["known@example.org"] == answers["nobody@example.org"] == {(303, "/login/forgot/sent")}
    assert len(mails_to("known@example.org")) == 9 and mails_to("nobody@example.org") == []
    known, unknown = (statistics.median(timings[a]) for a in ("known@example.org", "nobody@example.org"))
    assert abs(known - unknown) < 0.005, (known, unknown)  # answered before the lookup (17 ms apart when not)


def test_malformed_address_is_refused_with_a_message(client: FlaskClient) -> None:
    answer = ask_for_reset(client, "not-an-address")
    assert answer.status_code == 400 and "valid e-mail address" in answer.get_data(as_text=True)
    assert db.session.scalar(select(OutboxMessage.id)) is None


def test_operator_prints_a_one_time_link(app: Flask, runner: FlaskCliRunner,
                                        create_user: Callable[..., User]) -> None:
    create_user("cleo@example.org")
    result = runner.invoke(args=["users", "reset-password", "--email", "cleo@example.org"])
    assert result.exit_code == 0, result.output
    path = RESET_LINK.search(result.output).group(1)  # type: ignore[union-attr]
    assert mails_to("cleo@example.org") == []  # nothing is mailed: the operator passes the link on
    client = app.test_client()
    assert set_new_password(client, path).status_code == 303
    assert client.get(path).status_code == 404  # used up
    unknown = runner.invoke(args=["users", "reset-password", "--email", "nobody@example.org"])
    assert unknown.exit_code == 1 and "No enabled user" in unknown.output


CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _form_token(http: Any, url: str) -> str:
    match = CSRF_FIELD.search(http.get(url, timeout=10).text)
    assert match, url
    return match.group(1)


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_reset_mail_is_written_after_the_answer_on_the_real_server(tmp_path: Path, async_mode: str) -> None:
    """The background task that looks the address up and mails runs under both async modes."""
    import requests

    from tests.support.server import running_server

    with running_server(tmp_path / "instance", async_mode, demo_attendees=2) as server:
        asker = requests.Session()
        answer = asker.post(f"{server.url}/login/forgot", allow_redirects=False, timeout=10,
                            data={"csrf_token": _form_token(asker, f"{server.url}/login/forgot"),
                                  "email": "orga@demo.invalid"})
        assert answer.status_code == 303 and answer.headers["Location"] == "/login/forgot/sent"
        admin = requests.Session()
        admin.post(f"{server.url}/login", timeout=10, data={
            "csrf_token": _form_token(admin, f"{server.url}/login"), "email": "admin@demo.invalid",
            "password": "demo-passwort-2027"})
        deadline = time.monotonic() + 10
        links: list[str] = []
        while not links and time.monotonic() < deadline:
            links = re.findall(r'href="([^"]*/account/reset/[^"]+)"', admin.get(f"{server.url}/manage/outbox",
                                                                                 timeout=10).text)
        assert len(links) == 1, "no reset mail in the outbox"
        path = links[0].split("://", 1)[-1].partition("/")[2] if "://" in links[0] else links[0].lstrip("/")
        assert requests.get(f"{server.url}/{path}", timeout=10).status_code == 200
