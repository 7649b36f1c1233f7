"""Account pre-registration hijack: a stranger who registers someone's address first gains nothing from it.

The squatter registers `someone@partner.example` before its owner does. Organisers then give that address a role
(people page), import it, or invite it to speak; the squatter must get none of it, while the owner, once the
mailbox is proved, gets all of it. Mailed links are refused when tampered, expired, used or foreign, and
registration does not tell anyone whether an address has an account.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from conference.auth.models import User
from conference.core.mail import OutboxMessage
from conference.events.models import EventMembership
from conference.extensions import db, socketio
from conference.speakers.models import SpeakerProfile
from tests.fixtures.accounts import CSRF_PATTERN, csrf_token, login
from tests.security.conftest import Evidence, StateGuard, World, assert_refused

VICTIM = "someone@partner.example"
SQUATTER_PASSWORD = "squatters-password-1"
OWNER_PASSWORD = "owners-own-password-1"


def register(client: FlaskClient, email: str, *, password: str = SQUATTER_PASSWORD, name: str = "Sam Squatter",
             next_path: str | None = None) -> Any:
    token = csrf_token(client, "/register")
    data = {"csrf_token": token, "name": name, "email": email, "password": password}
    if next_path:
        data["next"] = next_path
    return client.post("/register", data=data)


def mails_to(address: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == address)
                                   .order_by(OutboxMessage.id)))


def link_in(mail: OutboxMessage, kind: str) -> str:
    """The site path of the first link of `kind` ("/account/confirm/", "/invitations/") in a mail."""
    match = re.search(r"http://localhost(\S*?" + re.escape(kind) + r"\S+)", mail.body)
    assert match, mail.body
    return match.group(1)


def role_of(email: str, event_id: int) -> str | None:
    db.session.expire_all()
    return db.session.scalar(select(EventMembership.role).join(User, User.id == EventMembership.user_id)
                             .where(User.email == email, EventMembership.event_id == event_id))


def assert_not_taken_over(world: World, squatter: FlaskClient, evidence: Evidence, how: str) -> None:
    role = role_of(VICTIM, world.event.id)
    manage = squatter.get("/manage/events/alpha/").status_code
    if role is not None or manage == 200:
        evidence.note("accounts_taken_over", f"{how}: the squatter holds {role!r} (manage page {manage})")
    assert role is None and manage == 403, (how, role, manage)


def squat(world: World) -> FlaskClient:
    """The squatter registers the victim's address and logs in with their own password."""
    squatter = world.app.test_client()
    assert register(squatter, VICTIM).status_code == 302
    assert login(squatter, VICTIM, SQUATTER_PASSWORD).status_code == 302
    return squatter


def claim_with_new_password(owner: FlaskClient, link: str, new_password: str = OWNER_PASSWORD) -> Any:
    """The owner of the mailbox follows a mailed link and chooses a password (they do not know the squatter's)."""
    page = owner.get(link)
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    path, _sep, query = link.partition("?")
    return owner.post(f"{path}/password" + (f"?{query}" if query else ""),
                      data={"csrf_token": csrf_token(owner, link), "new_password": new_password})


# --- roles, imports, invitations ------------------------------------------------------------------------------


def test_squatter_gets_no_role_from_the_people_page(world: World, evidence: Evidence) -> None:
    squatter = squat(world)
    squatter_socket = socketio.test_client(world.app, flask_test_client=squatter)
    assert squatter_socket.is_connected()
    organiser = world.client("organiser")
    evidence.add("takeover_attempts")
    granted = organiser.post("/manage/events/alpha/people", data={
        "csrf_token": world.csrf("organiser"), "email": VICTIM, "role": "organiser"})
    assert granted.status_code == 303
    assert_not_taken_over(world, squatter, evidence, "people page")
    page = organiser.get("/manage/events/alpha/people").get_data(as_text=True)
    assert VICTIM in page and "unconfirmed – takes effect after confirmation" in page
    assert "has not confirmed the e-mail address yet" in page  # the organiser's flash message

    # The owner reads the confirmation mail the squatter's registration sent to their mailbox.
    owner = world.app.test_client()
    claimed = claim_with_new_password(owner, link_in(mails_to(VICTIM)[0], "/account/confirm/"))
    assert claimed.status_code == 303
    assert role_of(VICTIM, world.event.id) == "organiser"
    assert owner.get("/manage/events/alpha/").status_code == 200
    # The squatter is out: the login ended, its socket closed, the old password is gone.
    assert squatter.get("/account").status_code == 302
    assert not squatter_socket.is_connected()
    assert login(world.app.test_client(), VICTIM, SQUATTER_PASSWORD).status_code == 400


def test_squatter_gets_nothing_from_an_import(world: World, evidence: Evidence, tmp_path: Path) -> None:
    squatter = squat(world)
    password_hash = db.session.scalar(select(User.password_hash).where(User.email == VICTIM))
    listing = tmp_path / "registrations.csv"
    listing.write_text(f"email,name,role,password\n{VICTIM},Echte Person,speaker,imported-password-1\n"
                       "neu-importiert@example.org,Neu Importiert,speaker,\n", encoding="utf-8")
    evidence.add("takeover_attempts")
    result = world.app.test_cli_runner().invoke(args=["users", "import", str(listing), "--event", "alpha"])
    assert result.exit_code == 0, result.output
    assert_not_taken_over(world, squatter, evidence, "import")
    assert f"line 2: {VICTIM} has an account whose address is not confirmed" in result.output
    assert f"line 2: {VICTIM} has an account already; its password was not changed" in result.output
    db.session.expire_all()
    assert db.session.scalar(select(User.password_hash).where(User.email == VICTIM)) == password_hash
    # A new account made by the import: the operator vouches for it, its role applies at once.
    assert role_of("neu-importiert@example.org", world.event.id) == "speaker"

    # The owner tries to register, is told by mail that the address has an account, and claims it from there.
    owner = world.app.test_client()
    assert register(owner, VICTIM, password=OWNER_PASSWORD, name="Echte Person").status_code == 302
    notice = mails_to(VICTIM)[-1]
    assert notice.subject == "Someone tried to register with your e-mail address"
    assert claim_with_new_password(owner, link_in(notice, "/account/confirm/")).status_code == 303
    assert role_of(VICTIM, world.event.id) == "speaker"
    assert squatter.get("/account").status_code == 302


def test_squatter_cannot_accept_a_speaker_invitation(world: World, evidence: Evidence) -> None:
    squatter = squat(world)
    organiser = world.client("organiser")
    invited = organiser.post("/manage/events/alpha/speakers/invite", data={
        "csrf_token": world.csrf("organiser"), "session_id": world.own_session.id, "speaker_id": 0,
        "name": "Echte Person", "email": VICTIM, "role": "speaker"})
    assert invited.status_code == 303
    invitation = link_in(mails_to(VICTIM)[-1], "/invitations/")
    # Suppose the link reached the squatter anyway (forwarded, or read in the organisers' outbox).
    evidence.add("takeover_attempts")
    accepted = squatter.post(invitation, data={"csrf_token": csrf_token(squatter, invitation)})
    db.session.expire_all()
    profile = db.session.scalar(select(SpeakerProfile).where(SpeakerProfile.name == "Echte Person"))
    if profile.user_id is not None:
        evidence.note("accounts_taken_over", f"invitation: the squatter claimed the profile ({accepted.status_code})")
    assert_refused(accepted, 403, evidence, "squatter accepts the invitation")
    assert "Please confirm your e-mail address first" in accepted.get_data(as_text=True)
    assert profile.user_id is None
    assert_not_taken_over(world, squatter, evidence, "invitation")

    # The owner proves the address, then accepts.
    owner = world.app.test_client()
    assert claim_with_new_password(owner, link_in(mails_to(VICTIM)[0], "/account/confirm/")).status_code == 303
    assert owner.post(invitation, data={"csrf_token": csrf_token(owner, invitation)}).status_code == 303
    db.session.expire_all()
    owner_id = db.session.scalar(select(User.id).where(User.email == VICTIM))
    assert db.session.get(SpeakerProfile, profile.id).user_id == owner_id
    assert role_of(VICTIM, world.event.id) == "speaker"


# --- the mailed links ---------------------------------------------------------------------------------------


class _Past(TimestampSigner):
    """Signs as if 49 hours ago: a genuine link that is older than its 48 hours."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 49 * 3600


def _refuse(client: FlaskClient, link: str, guard: StateGuard, evidence: Evidence, status: int, message: str,
            what: str, **data: str) -> None:
    """GET (the page) where there is one, and POST: both refused with `message`, nothing changed."""
    guard.take()
    evidence.add("takeover_attempts")
    responses = [] if link.endswith("/password") else [client.get(link)]
    responses.append(client.post(link, data={"csrf_token": csrf_token(client, "/login"), **data}))
    for response in responses:
        assert_refused(response, status, evidence, what)
        assert message in response.get_data(as_text=True), (what, response.get_data(as_text=True)[:400])
    guard.assert_unchanged(what)


def test_confirmation_links_refused_when_tampered_expired_reused_or_foreign(
        world: World, guard: StateGuard, evidence: Evidence) -> None:
    alice, bob = world.app.test_client(), world.app.test_client()
    for client, email in ((alice, "alice@partner.example"), (bob, "bob@partner.example")):
        assert register(client, email, name=email.split("@")[0]).status_code == 302
        assert login(client, email, SQUATTER_PASSWORD).status_code == 302
    link = link_in(mails_to("alice@partner.example")[0], "/account/confirm/")
    token = link.removeprefix("/account/confirm/")
    invalid = "This link is not valid"
    payload, timestamp, signature = token.split(".")
    tampered = {
        "a changed signature": f"{payload}.{timestamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "a changed payload": f"{payload[:-2]}{'xy' if payload[-2:] != 'xy' else 'yz'}.{timestamp}.{signature}",
        "a cut token": token[:-6],
        "another purpose's key": URLSafeTimedSerializer(world.app.config["SECRET_KEY"], salt="speaker-invitation")
        .dumps({"id": 1, "nonce": "n" * 32}),
        "another secret": URLSafeTimedSerializer("not-the-secret", salt="account-address-link").dumps({"u": 1}),
    }
    for what, forged in tampered.items():
        _refuse(alice, f"/account/confirm/{forged}", guard, evidence, 404, invalid, what)
    data = URLSafeTimedSerializer(world.app.config["SECRET_KEY"], salt="account-address-link").loads(token)
    expired = URLSafeTimedSerializer(world.app.config["SECRET_KEY"], salt="account-address-link",
                                     signer=_Past).dumps(data)
    _refuse(alice, f"/account/confirm/{expired}", guard, evidence, 410, "This link has expired", "expired")

    # Alice's link in Bob's browser confirms neither of them: it needs Alice's login or password.
    guard.take()
    evidence.add("takeover_attempts")
    for password in ("", SQUATTER_PASSWORD + "x"):
        foreign = bob.post(link, data={"csrf_token": csrf_token(bob, link), "password": password})
        assert_refused(foreign, 400, evidence, "Alice's link in Bob's browser")
        assert "The password is not correct." in foreign.get_data(as_text=True)
    guard.assert_unchanged("foreign link")

    # Alice, logged in, confirms with one click; the same link is dead afterwards.
    assert alice.post(link, data={"csrf_token": csrf_token(alice, link)}).status_code == 303
    db.session.expire_all()
    verified = dict(db.session.execute(select(User.email, User.email_verified_at)
                                       .where(User.email.like("%@partner.example"))).all())
    assert verified["alice@partner.example"] is not None and verified["bob@partner.example"] is None
    _refuse(alice, link, guard, evidence, 404, invalid, "used once already", password=SQUATTER_PASSWORD)
    _refuse(bob, f"{link}/password", guard, evidence, 404, invalid, "used link, new password",
            new_password="another-password-1")

    # A link stays bound to the address it was sent to.
    bob_link = link_in(mails_to("bob@partner.example")[0], "/account/confirm/")
    db.session.scalar(select(User).where(User.email == "bob@partner.example")).email = "bob@elsewhere.example"
    db.session.commit()
    _refuse(bob, bob_link, guard, evidence, 404, invalid, "the account's address changed")


def test_owner_of_an_address_cannot_be_made_to_confirm_a_strangers_account(world: World, guard: StateGuard,
                                                                           evidence: Evidence) -> None:
    """The owner opens the link the squatter's registration sent them: one click must not confirm that account."""
    squatter = squat(world)
    link = link_in(mails_to(VICTIM)[0], "/account/confirm/")
    owner = world.app.test_client()
    page = owner.get(link).get_data(as_text=True)
    assert "Enter the password of the account" in page and "Choose a new password" in page
    guard.take()
    evidence.add("takeover_attempts")
    clicked = owner.post(link, data={"csrf_token": csrf_token(owner, link)})
    assert_refused(clicked, 400, evidence, "one click by the owner")
    guard.assert_unchanged("one click by the owner")
    db.session.expire_all()
    if db.session.scalar(select(User.email_verified_at).where(User.email == VICTIM)) is not None:
        evidence.note("accounts_taken_over", "the owner's click confirmed the squatter's account")
    assert squatter.get("/account").status_code == 200


# --- no enumeration ---------------------------------------------------------------------------------------


def _without_csrf(html: str) -> str:
    return CSRF_PATTERN.sub("csrf", html)


def _attempt(world: World, email: str, password: str = "long-enough-pass-1") -> tuple[Any, Any, float]:
    client = world.app.test_client()
    token = csrf_token(client, "/register")
    started = time.perf_counter()
    response = client.post("/register", data={"csrf_token": token, "name": "Neue Person", "email": email,
                                              "password": password})
    elapsed = time.perf_counter() - started
    followed = client.get(response.headers["Location"]) if response.status_code == 302 else None
    return response, followed, elapsed


def _comparable(response: Any) -> tuple[int, bytes, list[tuple[str, str]], list[str]]:
    # X-Request-Id is new for every request (core/logs.py): it says nothing about the address
    headers = [(k, v) for k, v in response.headers.items() if k not in ("Set-Cookie", "X-Request-Id")]
    cookies = [v.split("=", 1)[0] for k, v in response.headers.items() if k == "Set-Cookie"]
    return response.status_code, response.get_data(), headers, cookies


def test_registration_does_not_tell_whether_an_address_has_an_account(world: World, evidence: Evidence) -> None:
    existing, existing_page, _ = _attempt(world, "attendee@example.org")
    new, new_page, _ = _attempt(world, "brand-new@example.org")
    evidence.add("variants", 2)
    assert _comparable(existing) == _comparable(new)
    assert existing_page is not None and new_page is not None
    assert existing_page.status_code == new_page.status_code == 200
    assert _without_csrf(existing_page.get_data(as_text=True)) == _without_csrf(new_page.get_data(as_text=True))
    assert "Check your mailbox" in new_page.get_data(as_text=True)
    # The owner of the existing address is told; the new address gets its confirmation link.
    assert [m.subject for m in mails_to("attendee@example.org")] == [
        "Someone tried to register with your e-mail address"]
    assert [m.subject for m in mails_to("brand-new@example.org")] == ["Please confirm your e-mail address"]
    # Refused input reads the same for both, too.
    short_existing, _, _ = _attempt(world, "attendee@example.org", password="short")
    short_new, _, _ = _attempt(world, "another-new@example.org", password="short")
    assert short_existing.status_code == short_new.status_code == 400
    assert _without_csrf(short_existing.get_data(as_text=True)).replace("attendee@example.org", "x") == \
        _without_csrf(short_new.get_data(as_text=True)).replace("another-new@example.org", "x")
    # Both paths hash the password at the production cost, so the time tells nothing either.
    world.app.config["PASSWORD_HASH_METHOD"] = "scrypt"
    times: dict[str, list[float]] = {"existing": [], "new": []}
    for index in range(3):
        times["existing"].append(_attempt(world, "speaker@example.org")[2])
        times["new"].append(_attempt(world, f"timing-{index}@example.org")[2])
    existing_median, new_median = statistics.median(times["existing"]), statistics.median(times["new"])
    assert 0.5 < existing_median / new_median < 2.0, times


def test_confirmation_and_notice_mails_are_rate_limited(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    assert register(client, "eager@partner.example").status_code == 302
    assert login(client, "eager@partner.example", SQUATTER_PASSWORD).status_code == 302
    statuses = [client.post("/account/confirm", data={"csrf_token": csrf_token(client, "/account")}).status_code
                for _ in range(4)]
    assert statuses == [303, 303, 303, 429]
    assert len(mails_to("eager@partner.example")) == 1 + 3
    # Registration attempts for an existing address all answer alike; its owner gets at most three notices.
    answers = {_attempt(world, "attendee@example.org")[0].headers.get("Location") for _ in range(5)}
    evidence.add("variants", 5)
    assert answers == {"/register/sent"}
    assert len(mails_to("attendee@example.org")) == 3


def test_unconfirmed_account_can_log_in_browse_and_join_an_open_event(world: World) -> None:
    """Unconfirmed is not locked out: registering oneself for an open event attaches nothing to the address."""
    client = world.app.test_client()
    assert register(client, "new@partner.example").status_code == 302
    assert login(client, "new@partner.example", SQUATTER_PASSWORD).status_code == 302
    page = client.get("/events/alpha/").get_data(as_text=True)
    assert "Please confirm your e-mail address new@partner.example" in page and "Send the link again" in page
    assert "Please confirm your e-mail address" not in world.client("attendee").get("/events/alpha/").get_data(
        as_text=True)
    joined = client.post("/events/alpha/register", data={"csrf_token": csrf_token(client, "/events/alpha/")})
    assert joined.status_code == 303
    assert role_of("new@partner.example", world.event.id) == "attendee"
