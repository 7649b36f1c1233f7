"""Socket.IO in-process: unauthenticated connects, foreign origins, forbidden rooms, forged identity, malformed
payloads, floods, and muted/banned/logged-out people with open sockets. Every refusal is an ack
{"ok": false, "error": code} (or a refused connect) and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask_socketio import SocketIOTestClient
from sqlalchemy import select

from conference.extensions import db, socketio
from conference.live.models import ChatMessage
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import csrf_token, login
from tests.security.conftest import Evidence, StateGuard, World


@pytest.fixture
def app_settings(tmp_path: Any) -> dict[str, Any]:
    return settings_for_tests(tmp_path, LIVE_CHAT_RATE_LIMIT=(20, 60), LIVE_MAX_CONNECTIONS_PER_USER=8)


def connect(world: World, who: str, **kwargs: Any) -> SocketIOTestClient:
    return socketio.test_client(world.app, auth={"token": world.tokens[who]}, **kwargs)


def joined(world: World, who: str, room: str = "lobby:alpha") -> SocketIOTestClient:
    client = connect(world, who)
    ack = client.emit("join", {"room": room}, callback=True)
    assert ack["ok"] is True, ack
    client.get_received()
    return client


def refused(ack: Any, code: str | tuple[str, ...], evidence: Evidence, what: str) -> None:
    codes = (code,) if isinstance(code, str) else code
    evidence.add("variants")
    ok = isinstance(ack, dict) and ack.get("ok") is False and ack.get("error") in codes
    if not ok:
        if isinstance(ack, dict) and ack.get("ok") is True:
            evidence.note("wrongly_accepted", f"socket {what}: {ack}")
        if isinstance(ack, dict) and ack.get("error") == "internal":
            evidence.note("server_errors", f"socket {what}")
    assert ok, (what, ack)
    assert isinstance(ack.get("message"), str) and "Traceback" not in ack["message"]


@pytest.mark.parametrize("auth", [None, {"token": "cft_unknown"}, {"token": 5}, {"token": ""}, "cft_x", [1],
                                  {"token": "cft_" + "a" * 5000}, {"token": None}, {"Token": "x"}, 17,
                                  {"token": "x\x00"}])
def test_unauthenticated_connect_is_refused(auth: Any, world: World, evidence: Evidence) -> None:
    client = socketio.test_client(world.app, auth=auth)
    evidence.add("variants")
    assert not client.is_connected()


def test_revoked_token_and_disabled_account_cannot_connect(world: World, evidence: Evidence) -> None:
    from conference.auth import logins
    from conference.auth.models import ApiToken, User
    from conference.core.after_commit import commit

    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == world.users["attendee"].id))
    logins.revoke_api_token(world.users["attendee"], token_id=token_id)
    user = db.session.get(User, world.users["outsider"].id)
    user.is_disabled = True
    commit()
    for who in ("attendee", "outsider"):
        evidence.add("variants")
        assert not connect(world, who).is_connected()


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example", "null",
                                    "http://localhost:8080", "https://localhost"])
def test_browser_handshake_from_foreign_origin_is_refused(origin: str, world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    login(client, "attendee@example.org")
    foreign = socketio.test_client(world.app, flask_test_client=client, headers={"Origin": origin})
    evidence.add("variants")
    assert not foreign.is_connected()
    own = socketio.test_client(world.app, flask_test_client=client, headers={"Origin": "http://localhost"})
    assert own.is_connected()
    own.disconnect()


def test_forbidden_and_malformed_rooms(world: World, guard: StateGuard, evidence: Evidence) -> None:
    outsider, speaker, banned = connect(world, "outsider"), connect(world, "speaker"), connect(world, "banned")
    guard.take()
    cases = [
        (outsider, {"room": "lobby:alpha"}, "not_registered"),
        (outsider, {"room": f"session:{world.own_session.id}"}, "not_registered"),
        (speaker, {"room": "lobby:beta"}, "not_registered"),
        (speaker, {"room": f"session:{world.other_event_session.id}"}, "not_registered"),
        (banned, {"room": "lobby:alpha"}, "banned"),
        (speaker, {"room": "lobby:../alpha"}, "unknown_room"),
        (speaker, {"room": "session:abc"}, "unknown_room"),
        (speaker, {"room": "session:-1"}, "unknown_room"),
        (speaker, {"room": "session:99999999999999999999"}, "unknown_room"),
        (speaker, {"room": "admin:alpha"}, "unknown_room"),
        (speaker, {"room": "lobby:alpha\x00"}, "unknown_room"),
        (speaker, {"room": "x" * 10_000}, "unknown_room"),
        (speaker, {"room": ["lobby:alpha"]}, ("unknown_room", "invalid")),
        (speaker, {"room": None}, ("unknown_room", "invalid")),
    ]
    for client, payload, code in cases:
        refused(client.emit("join", payload, callback=True), code, evidence, f"join {payload!r:.60}")
    # Sending into a room without joining it, and into the event room (no chat there).
    refused(speaker.emit("chat:send", {"room": "lobby:beta", "text": "x", "client_id": "a"}, callback=True),
            ("not_registered", "not_joined"), evidence, "send to foreign lobby")
    refused(outsider.emit("chat:history", {"room": "lobby:alpha"}, callback=True), ("not_registered", "forbidden"),
            evidence,
            "history of a lobby not registered for")
    refused(speaker.emit("presence:who", {"room": "lobby:alpha"}, callback=True), ("forbidden", "not_joined"),
            evidence, "presence:who as speaker")
    refused(speaker.emit("announce", {"event": "alpha", "text": "Hallo"}, callback=True), "forbidden", evidence,
            "announce as speaker")
    refused(speaker.emit("chat:delete", {"message_id": world.message.id}, callback=True), "forbidden", evidence,
            "delete as speaker")
    refused(speaker.emit("mod:ban", {"room": "lobby:alpha", "user_id": world.users["attendee"].id},
                         callback=True), "forbidden", evidence, "ban as speaker")
    guard.assert_unchanged("forbidden rooms")


def test_forged_identity_fields_are_ignored(world: World, evidence: Evidence) -> None:
    client = joined(world, "attendee")
    organiser = world.users["organiser"]
    ack = client.emit("chat:send", {"room": "lobby:alpha", "text": "Ich bin die Orga", "client_id": "f-1",
                                    "author": {"id": organiser.id, "name": "Olga Organiser", "role": "organiser"},
                                    "id": 1, "created_at": "2000-01-01T00:00:00Z", "user_id": organiser.id,
                                    "role": "organiser", "event_id": world.other_event.id}, callback=True)
    evidence.add("variants")
    if ack.get("ok") is False:
        assert ack["error"] == "invalid"  # refusing unknown fields is fine too
        return
    message = ack["message"]
    assert message["author"]["id"] == world.users["attendee"].id and message["author"]["role"] == "attendee"
    assert message["id"] != 1 and not message["created_at"].startswith("2000")
    stored = db.session.get(ChatMessage, message["id"])
    assert stored is not None and stored.author_id == world.users["attendee"].id
    assert stored.event_id == world.event.id


MALFORMED: list[tuple[str, Any]] = [
    ("list", ["lobby:alpha", "x"]), ("string", "lobby:alpha"), ("number", 5), ("null", None), ("bool", True),
    ("text list", {"room": "lobby:alpha", "text": ["a"], "client_id": "m"}),
    ("text dict", {"room": "lobby:alpha", "text": {"$gt": ""}, "client_id": "m"}),
    ("no client id", {"room": "lobby:alpha", "text": "a"}),
    ("bad client id", {"room": "lobby:alpha", "text": "a", "client_id": "../../etc"}),
    ("long client id", {"room": "lobby:alpha", "text": "a", "client_id": "a" * 65}),
    ("empty text", {"room": "lobby:alpha", "text": "   ", "client_id": "m"}),
    ("too long", {"room": "lobby:alpha", "text": "a" * 2001, "client_id": "m"}),
    ("nul", {"room": "lobby:alpha", "text": "a\x00b", "client_id": "m"}),
    ("bidi", {"room": "lobby:alpha", "text": "a\u202eb", "client_id": "m"}),
    ("deep nesting", {"room": "lobby:alpha", "text": [[[[[[[[[[[[[[[[[[[[["a"]]]]]]]]]]]]]]]]]]]]],
                      "client_id": "m"}),
]


def test_malformed_payloads_are_refused(world: World, guard: StateGuard, evidence: Evidence) -> None:
    client = joined(world, "attendee")
    guard.take()
    for name, payload in MALFORMED:
        refused(client.emit("chat:send", payload, callback=True),
                ("invalid_payload", "invalid", "empty", "too_long", "unknown_room"), evidence, name)
    refused(client.emit("chat:send", {"room": "lobby:alpha"}, {"second": 1}, callback=True),
            ("invalid_payload", "invalid"), evidence, "two arguments")
    for event in ("qa:ask", "qa:vote", "react", "chat:report", "mod:mute", "announce", "join", "chat:history"):
        for name, payload in MALFORMED[:5]:
            refused(client.emit(event, payload, callback=True), ("invalid_payload", "invalid", "unknown_room"),
                    evidence, f"{event} {name}")
    refused(client.emit("admin:drop_tables", {}, callback=True), "unknown_event", evidence, "unknown event")
    refused(client.emit("react", {"room": "lobby:alpha", "reaction": "<script>"}, callback=True), "invalid",
            evidence, "unknown reaction")
    assert client.is_connected()
    guard.assert_unchanged("malformed payloads")


def test_message_flood_is_rate_limited(world: World, evidence: Evidence) -> None:
    client = joined(world, "attendee")
    before = db.session.scalar(select(db.func.count()).select_from(ChatMessage))
    acks = [client.emit("chat:send", {"room": "lobby:alpha", "text": f"Flut {i}", "client_id": f"fl-{i}"},
                        callback=True) for i in range(40)]
    evidence.add("variants", 40)
    assert [a["ok"] for a in acks] == [True] * 20 + [False] * 20
    assert {a["error"] for a in acks[20:]} == {"rate_limited"}
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(ChatMessage)) == before + 20


def test_connection_flood_is_capped_per_person(world: World, evidence: Evidence) -> None:
    clients = [connect(world, "attendee") for _ in range(12)]
    evidence.add("variants", 12)
    assert [c.is_connected() for c in clients] == [True] * 8 + [False] * 4
    for client in clients:
        if client.is_connected():
            client.disconnect()
    assert connect(world, "attendee").is_connected()  # the slots come back


def test_muted_person_with_an_open_socket_cannot_write(world: World, evidence: Evidence) -> None:
    attendee = joined(world, "attendee", f"session:{world.own_session.id}")
    moderator = joined(world, "moderator", f"session:{world.own_session.id}")
    ack = moderator.emit("mod:mute", {"room": f"session:{world.own_session.id}",
                                      "user_id": world.users["attendee"].id}, callback=True)
    assert ack["ok"] is True, ack
    room = f"session:{world.own_session.id}"
    before = db.session.scalar(select(db.func.count()).select_from(ChatMessage))
    refused(attendee.emit("chat:send", {"room": room, "text": "still here", "client_id": "m1"}, callback=True),
            "muted", evidence, "muted chat")
    refused(attendee.emit("qa:ask", {"room": room, "text": "Frage?", "client_id": "q1"}, callback=True),
            "muted", evidence, "muted question")
    refused(attendee.emit("react", {"room": room, "reaction": "heart"}, callback=True), "muted", evidence,
            "muted reaction")
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(ChatMessage)) == before
    assert attendee.emit("chat:history", {"room": room}, callback=True)["ok"] is True  # may still read


def test_banned_person_with_an_open_socket_is_removed(world: World, evidence: Evidence) -> None:
    attendee = joined(world, "attendee")
    moderator = joined(world, "moderator")
    ack = moderator.emit("mod:ban", {"room": "lobby:alpha", "user_id": world.users["attendee"].id}, callback=True)
    assert ack["ok"] is True, ack
    removed = [p["args"][0] for p in attendee.get_received() if p["name"] == "room:removed"]
    assert removed and removed[0]["reason"] == "banned"
    refused(attendee.emit("chat:send", {"room": "lobby:alpha", "text": "x", "client_id": "b1"}, callback=True),
            ("banned", "not_joined"), evidence, "banned chat")
    refused(attendee.emit("join", {"room": "lobby:alpha"}, callback=True), "banned", evidence, "banned rejoin")


def test_logout_closes_the_browser_socket(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    login(client, "attendee@example.org")
    socket = socketio.test_client(world.app, flask_test_client=client)
    assert socket.is_connected()
    assert socket.emit("join", {"room": "lobby:alpha"}, callback=True)["ok"] is True
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    evidence.add("variants")
    assert not socket.is_connected()


def test_revoking_a_token_closes_its_socket(world: World, evidence: Evidence) -> None:
    socket = joined(world, "attendee")
    response = world.app.test_client().get("/api/v1/auth/tokens",
                                           headers={"Authorization": f"Bearer {world.tokens['attendee']}"})
    token_id = response.get_json()["tokens"][0]["id"]
    revoke = world.app.test_client().delete(f"/api/v1/auth/tokens/{token_id}",
                                            headers={"Authorization": f"Bearer {world.tokens['attendee']}"})
    assert revoke.status_code == 204
    evidence.add("variants")
    assert not socket.is_connected()


def test_losing_the_registration_removes_the_socket_from_rooms(world: World, evidence: Evidence) -> None:
    from conference.core.after_commit import commit
    from conference.events import services as event_services
    from conference.events.models import EventMembership

    socket = joined(world, "attendee")
    membership = event_services.membership_of(world.event, world.users["attendee"])
    db.session.delete(membership)
    world.users["attendee"].forget_roles()
    event_services._notify_membership_changed(world.users["attendee"].id, world.event.id)
    commit()
    assert event_services.membership_of(world.event, world.users["attendee"]) is None
    assert EventMembership is not None
    received = [p["args"][0] for p in socket.get_received() if p["name"] == "room:removed"]
    evidence.add("variants")
    assert received and received[0]["reason"] == "not_registered"
    refused(socket.emit("chat:send", {"room": "lobby:alpha", "text": "x", "client_id": "r1"}, callback=True),
            ("not_registered", "not_joined"), evidence, "chat after losing the registration")


def test_lone_surrogate_in_chat_is_refused_as_invalid(world: World, guard: StateGuard, evidence: Evidence) -> None:
    client = joined(world, "attendee")
    guard.take()
    ack = client.emit("chat:send", {"room": "lobby:alpha", "text": "a\ud800b", "client_id": "s1"}, callback=True)
    guard.assert_unchanged("surrogate chat")  # nothing stored; the answer is the bug
    assert ack.get("ok") is False and ack.get("error") == "invalid", ack


# --- against the real server (eventlet): frame size limits and handshakes from foreign origins --------------


@pytest.mark.server
def test_oversized_frames_close_the_socket_on_the_real_server(tmp_path: Any, evidence: Evidence) -> None:
    import asyncio
    import sqlite3

    import requests

    from tests.security.drill_client import open_client
    from tests.support.server import running_server

    with running_server(tmp_path / "instance", "eventlet", demo_attendees=2, tokens=True) as server:
        port = int(server.url.rsplit(":", 1)[1])
        lobby = "lobby:digitalkonferenz-2027"

        async def attempt(size: int) -> tuple[bool, Any]:
            client = await open_client(port, server.tokens[0], lobby)
            text = "x" * size
            try:
                ack = await client.call("chat:send", {"room": lobby, "text": text, "client_id": f"big-{size}"},
                                        timeout=5)
            except (TimeoutError, ConnectionError):
                ack = None
            await asyncio.sleep(0.2)
            closed = client.lost.is_set()
            client.close()
            return closed, ack

        for size in (70 * 1024, 1024 * 1024):
            closed, ack = asyncio.run(attempt(size))
            evidence.add("variants")
            assert closed and ack is None, (size, ack)
        closed, ack = asyncio.run(attempt(3000))  # over the chat limit but a small frame: a refusal, not a close
        assert not closed and ack["ok"] is False and ack["error"] == "too_long"
        with sqlite3.connect(server.instance / "conference.sqlite3") as db:
            assert db.execute("SELECT count(*) FROM chat_messages WHERE client_id LIKE 'big-%'").fetchone()[0] == 0
        # Engine.IO polling handshakes from a foreign Origin are answered (a token client may be on another site:
        # docs/protocol.md), but never with a grant for credentials; the login cookie is refused at CONNECT.
        for origin in ("https://evil.example", "null"):
            response = requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", timeout=10,
                                    headers={"Origin": origin})
            evidence.add("variants")
            assert response.status_code == 200 and "Access-Control-Allow-Credentials" not in response.headers
            assert response.headers.get("X-Content-Type-Options") == "nosniff"
