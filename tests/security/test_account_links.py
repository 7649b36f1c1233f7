"""Bad input against the account's own rights: reset and address-change links, names, addresses, deletion.

Each case gets a clear message and changes nothing (the state guard compares every table and the upload
directory before and after)."""

from __future__ import annotations

import re
import time
from typing import Any

from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from conference.auth import passwords
from conference.auth.models import User
from conference.core.mail import OutboxMessage
from conference.extensions import db
from tests.fixtures.accounts import PASSWORD, csrf_token, login
from tests.security.conftest import Evidence, StateGuard, World, assert_refused

INVALID = "This link is not valid"
NEW_PASSWORD = "a-fresh-password-42"


def mails_to(address: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == address)
                                   .order_by(OutboxMessage.id)))


def link_in(mail: OutboxMessage, prefix: str) -> str:
    match = re.search(r"http://localhost(" + re.escape(prefix) + r"[^\s]+)", mail.body)
    assert match, mail.body
    return match.group(1)


def ask_for_reset(client: FlaskClient, email: str) -> Any:
    answer = client.post("/login/forgot", data={"csrf_token": csrf_token(client, "/login/forgot"), "email": email})
    passwords.wait_for_reset_jobs()  # the lookup and the mail run after the answer
    return answer


def browser(world: World, principal: str) -> FlaskClient:
    client = world.app.test_client()
    assert login(client, world.users[principal].email).status_code == 302
    return client


class _Past(TimestampSigner):
    """Signs as if 61 minutes ago: a genuine reset link older than its hour."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 61 * 60


def _refused(client: FlaskClient, path: str, guard: StateGuard, evidence: Evidence, status: int, message: str,
             what: str, **data: str) -> None:
    """GET (the page) and POST (the change): both refused with `message`, nothing changed."""
    guard.take()
    for response in (client.get(path), client.post(path, data={"csrf_token": csrf_token(client, "/login"),
                                                               **data})):
        assert_refused(response, status, evidence, what)
        assert message in response.get_data(as_text=True), (what, response.get_data(as_text=True)[:300])
    guard.assert_unchanged(what)


def test_reset_links_refused_when_tampered_expired_reused_superseded_or_of_another_kind(
        world: World, guard: StateGuard, evidence: Evidence) -> None:
    client = world.app.test_client()
    secret = world.app.config["SECRET_KEY"]
    assert ask_for_reset(client, "attendee@example.org").status_code == 303
    first = link_in(mails_to("attendee@example.org")[0], "/account/reset/")
    token = first.removeprefix("/account/reset/")
    payload, timestamp, signature = token.split(".")
    forged = {
        "a changed signature": f"{payload}.{timestamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "a changed payload": f"{payload[:-2]}{'xy' if payload[-2:] != 'xy' else 'yz'}.{timestamp}.{signature}",
        "a cut token": token[:-6],
        "another secret": URLSafeTimedSerializer("not-the-secret", salt="account-password-reset").dumps({"u": 1}),
    }
    data = URLSafeTimedSerializer(secret, salt="account-password-reset").loads(token)
    # The address-confirmation key signs the same shape of data: it must not open the reset form, nor the
    # reverse, nor a reset token re-addressed to another account.
    forged["a confirmation link's key"] = URLSafeTimedSerializer(secret, salt="account-address-link").dumps(data)
    forged["another account's id"] = URLSafeTimedSerializer(secret, salt="account-password-reset").dumps(
        {**data, "u": world.users["speaker"].id})
    for what, bad in forged.items():
        _refused(client, f"/account/reset/{bad}", guard, evidence, 404, INVALID, what, new_password=NEW_PASSWORD)
    _refused(client, f"/account/confirm/{token}", guard, evidence, 404, INVALID, "a reset link as confirmation",
             password=PASSWORD)
    expired = URLSafeTimedSerializer(secret, salt="account-password-reset", signer=_Past).dumps(data)
    _refused(client, f"/account/reset/{expired}", guard, evidence, 410, "This link has expired", "expired",
             new_password=NEW_PASSWORD)

    # A newer request voids the older link; the newer one works once.
    assert ask_for_reset(client, "attendee@example.org").status_code == 303
    second = link_in(mails_to("attendee@example.org")[1], "/account/reset/")
    _refused(client, first, guard, evidence, 404, INVALID, "superseded", new_password=NEW_PASSWORD)
    done = client.post(second, data={"csrf_token": csrf_token(client, second), "new_password": NEW_PASSWORD})
    assert done.status_code == 303
    _refused(world.app.test_client(), second, guard, evidence, 404, INVALID, "used once",
             new_password="yet-another-password-1")


def test_reset_flood_of_one_address_sends_at_most_the_limit_and_answers_alike(world: World,
                                                                              evidence: Evidence) -> None:
    """The per-address limit is silent: a refusal would tell that someone asked for this address before."""
    allowed = world.app.config["MAIL_REQUEST_LIMIT_ACCOUNT"][0]
    answers = set()
    for _ in range(allowed + 4):
        response = ask_for_reset(world.app.test_client(), "speaker@example.org")
        evidence.add("variants")
        answers.add((response.status_code, response.headers.get("Location")))
    assert answers == {(303, "/login/forgot/sent")}
    assert len(mails_to("speaker@example.org")) == allowed


def test_reset_requests_from_one_network_are_limited_with_a_429(world: World, evidence: Evidence) -> None:
    allowed = world.app.config["MAIL_REQUEST_LIMIT_ADDRESS"][0]
    client = world.app.test_client()
    for index in range(allowed):
        assert ask_for_reset(client, f"nobody{index}@example.org").status_code == 303
    refused = ask_for_reset(client, "attendee@example.org")
    assert_refused(refused, 429, evidence, "the network's limit")
    assert "Too many mails were requested." in refused.get_data(as_text=True) and refused.headers["Retry-After"]
    assert mails_to("attendee@example.org") == []


def test_header_injection_in_the_name_is_refused(world: World, guard: StateGuard, evidence: Evidence) -> None:
    client = browser(world, "attendee")
    guard.take()
    for name in ("Anna\r\nBcc: victim@example.org", "Anna\nSubject: hi", "Anna\u202eevil", "   "):
        response = client.post("/account/name", data={"csrf_token": csrf_token(client, "/account"),
                                                      "account_name": name})
        assert_refused(response, 400, evidence, repr(name))
        text = response.get_data(as_text=True)
        assert "not allowed" in text or "Please enter your name" in text or "This field is required" in text
    guard.assert_unchanged("names with line breaks")


def test_address_change_to_a_used_or_malformed_address_is_refused(world: World, guard: StateGuard,
                                                                  evidence: Evidence) -> None:
    client = browser(world, "attendee")
    guard.take()
    cases = {
        "another account's address": ("Speaker@Example.org", PASSWORD, 409,
                                      "This address is used by another account."),
        "an injected header": ("new@example.org\r\nBcc: x@example.org", PASSWORD, 400,
                               "Please enter a valid e-mail address."),
        "the wrong password": ("new@example.org", "not-the-password", 400, "The password is not correct."),
        "the same address": ("attendee@example.org", PASSWORD, 400, "This is your address already."),
    }
    for what, (email, password, status, message) in cases.items():
        response = client.post("/account/email", data={"csrf_token": csrf_token(client, "/account"),
                                                       "new_email": email, "address_password": password})
        assert_refused(response, status, evidence, what)
        assert message in response.get_data(as_text=True), what
    guard.assert_unchanged("address changes")
    # Nothing about the other account shows: neither its name nor anything but the refusal.
    assert "Sam Speaker" not in response.get_data(as_text=True)


def test_address_change_links_refused_when_reused_tampered_taken_or_voided(world: World, guard: StateGuard,
                                                                          evidence: Evidence) -> None:
    owner = browser(world, "attendee")

    def request_change(to: str) -> str:
        answer = owner.post("/account/email", data={"csrf_token": csrf_token(owner, "/account"), "new_email": to,
                                                    "address_password": PASSWORD})
        assert answer.status_code == 303
        return link_in(mails_to(to)[-1], "/account/email/confirm/")

    link = request_change("anna@new.example")
    token = link.rsplit("/", 1)[1]
    _refused(owner, link[:-4], guard, evidence, 404, INVALID, "a cut token")
    secret = world.app.config["SECRET_KEY"]
    data = URLSafeTimedSerializer(secret, salt="account-address-change").loads(token)
    other = URLSafeTimedSerializer(secret, salt="account-address-change").dumps({**data, "n": "evil@example.org"})
    _refused(owner, f"/account/email/confirm/{other[:-3]}xyz", guard, evidence, 404, INVALID, "another address")
    reset_key = URLSafeTimedSerializer(secret, salt="account-password-reset").dumps(data)
    _refused(owner, f"/account/email/confirm/{reset_key}", guard, evidence, 404, INVALID, "another kind's key")

    # Someone registers the new address before the link is opened: refused, nothing changed.
    squatter = world.app.test_client()
    squatter.post("/register", data={"csrf_token": csrf_token(squatter, "/register"), "name": "Sam",
                                     "email": "anna@new.example", "password": "squatters-pass-1"})
    guard.take()
    taken = owner.post(link, data={"csrf_token": csrf_token(owner, link)})
    assert_refused(taken, 409, evidence, "taken meanwhile")
    assert "This address is used by another account." in taken.get_data(as_text=True)
    guard.assert_unchanged("taken meanwhile")

    # The old address's owner voids a pending change by changing the password.
    link = request_change("anna@other.example")
    assert owner.post("/account", data={"csrf_token": csrf_token(owner, "/account"), "current_password": PASSWORD,
                                        "new_password": NEW_PASSWORD}).status_code == 302
    _refused(owner, link, guard, evidence, 404, INVALID, "voided by a new password")

    # A used link does not work twice (and cannot move the address back).
    owner.post("/account", data={"csrf_token": csrf_token(owner, "/account"), "current_password": NEW_PASSWORD,
                                 "new_password": PASSWORD})
    link = request_change("anna@third.example")
    assert owner.post(link, data={"csrf_token": csrf_token(owner, link)}).status_code == 303
    _refused(owner, link, guard, evidence, 404, INVALID, "used once")


def test_last_organiser_cannot_delete_the_account(world: World, guard: StateGuard, evidence: Evidence) -> None:
    client = browser(world, "organiser")
    guard.take()
    response = client.post("/account/delete", data={"csrf_token": csrf_token(client, "/account"),
                                                    "delete_password": PASSWORD})
    assert_refused(response, 409, evidence, "last organiser")
    assert "You are the only organiser of “Alpha 2099”" in response.get_data(as_text=True)
    guard.assert_unchanged("last organiser")
    assert client.get("/account").status_code == 200  # still logged in


def test_deletion_needs_the_password(world: World, guard: StateGuard, evidence: Evidence) -> None:
    client = browser(world, "attendee")
    guard.take()
    for password in ("", "wrong-password-1"):
        response = client.post("/account/delete", data={"csrf_token": csrf_token(client, "/account"),
                                                        "delete_password": password})
        assert_refused(response, 400, evidence, f"password {password!r}")
    guard.assert_unchanged("deletion without the password")
    db.session.expire_all()
    assert db.session.get(User, world.users["attendee"].id).deleted_at is None
