"""The public Socket.IO protocol in-process (threading mode): semantics and every kind of bad input."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conference.core.permissions import Role
from conference.extensions import db, socketio
from conference.live.models import ChatMessage, ChatReport, Question
from tests.conftest import settings_for_tests
from tests.fixtures.live import events_named


@pytest.fixture
def app_settings(tmp_path: Any) -> dict[str, Any]:
    return settings_for_tests(tmp_path, LIVE_AGGREGATE_INTERVAL=0.05, LIVE_CHAT_RATE_LIMIT=(5, 60),
                              LIVE_MAX_CONNECTIONS_PER_USER=3)


@pytest.fixture
def event(create_event: Any) -> Any:
    return create_event("live-test")


def stored_messages() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(ChatMessage)) or 0


def joined(socket_for: Any, user: Any, room: str = "lobby:live-test", **kwargs: Any) -> Any:
    client = socket_for(user, **kwargs)
    ack = client.emit("join", {"room": room}, callback=True)
    assert ack["ok"] is True, ack
    client.get_received()
    return client


def noticed(client: Any) -> list[Any]:
    """What a client received apart from presence counts, which arrive on their own timer (about once a second)."""
    return [packet for packet in client.get_received() if packet["name"] != "presence"]


def send(client: Any, text: str = "Hallo", client_id: str = "c1", room: str = "lobby:live-test") -> Any:
    return client.emit("chat:send", {"room": room, "text": text, "client_id": client_id}, callback=True)


# --- connecting -------------------------------------------------------------------------------------------

def test_connect_with_api_token_and_browser_session(socket_for: Any, event: Any, person: Any) -> None:
    user = person(event, Role.ATTENDEE)
    assert socket_for(user).is_connected()
    assert socket_for(user, browser=True).is_connected()


@pytest.mark.parametrize("auth", [None, {"token": "cft_unknown"}, {"token": 5}, {"token": ""}, "token", [1],
                                  {"token": "x", "extra": 1}])
def test_connect_refused_without_valid_credentials(app: Any, auth: Any) -> None:
    client = socketio.test_client(app, auth=auth)
    assert not client.is_connected()


def test_connect_refused_after_logout(app: Any, event: Any, person: Any, client: Any) -> None:
    from tests.fixtures.accounts import csrf_token, login

    user = person(event, Role.ATTENDEE)
    login(client, user.email)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert not socketio.test_client(app, flask_test_client=client).is_connected()


def test_browser_connect_from_foreign_origin_refused(app: Any, event: Any, person: Any, client: Any) -> None:
    from tests.fixtures.accounts import login

    user = person(event, Role.ATTENDEE)
    login(client, user.email)
    foreign = socketio.test_client(app, flask_test_client=client, headers={"Origin": "https://evil.example"})
    assert not foreign.is_connected()
    own = socketio.test_client(app, flask_test_client=client, headers={"Origin": "http://localhost"})
    assert own.is_connected()


def test_connection_cap_per_user(socket_for: Any, event: Any, person: Any) -> None:
    user = person(event, Role.ATTENDEE)
    clients = [socket_for(user) for _ in range(3)]
    assert all(c.is_connected() for c in clients)
    assert not socket_for(user).is_connected()
    clients[0].disconnect()
    assert socket_for(user).is_connected()


# --- joining --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", list(Role))
def test_every_role_may_join(socket_for: Any, event: Any, person: Any, role: Role) -> None:
    client = socket_for(person(event, role))
    ack = client.emit("join", {"room": "lobby:live-test"}, callback=True)
    assert ack["ok"] is True and ack["history"] == [] and ack["online"] == 1


def test_site_admin_may_join_without_registration(socket_for: Any, event: Any, create_user: Any) -> None:
    admin = create_user(is_admin=True)
    assert socket_for(admin).emit("join", {"room": "lobby:live-test"}, callback=True)["ok"] is True


def test_join_refused_for_unregistered_user(socket_for: Any, event: Any, create_user: Any) -> None:
    ack = socket_for(create_user()).emit("join", {"room": "lobby:live-test"}, callback=True)
    assert ack["ok"] is False and ack["error"] == "not_registered"


def test_join_refused_for_other_events_room(socket_for: Any, event: Any, create_event: Any, person: Any,
                                            create_session: Any) -> None:
    other = create_event("other-event")
    session = create_session(other)
    client = socket_for(person(event, Role.ATTENDEE))
    for room in ("lobby:other-event", f"session:{session.id}", "event:other-event"):
        ack = client.emit("join", {"room": room}, callback=True)
        assert ack["error"] == "not_registered", room


@pytest.mark.parametrize("payload,error", [
    ({"room": "lobby:nope"}, "unknown_room"), ({"room": "session:999999"}, "unknown_room"),
    ({"room": "garden:live-test"}, "unknown_room"), ({"room": 5}, "invalid"), ({}, "invalid"),
    ({"room": "session:abc"}, "unknown_room"), ({"room": "LOBBY:live-test"}, "unknown_room"),
])
def test_join_bad_rooms(socket_for: Any, event: Any, person: Any, payload: Any, error: str) -> None:
    ack = socket_for(person(event, Role.ATTENDEE)).emit("join", payload, callback=True)
    assert ack["ok"] is False and ack["error"] == error and ack["message"]


def test_join_history_has_last_50_in_order(socket_for: Any, event: Any, person: Any) -> None:
    sender = joined(socket_for, person(event, Role.ATTENDEE))
    app_limit = {"LIVE_CHAT_RATE_LIMIT": (100, 60)}
    sender_state = socketio.server  # noqa: F841 - the limit is raised through the app config below
    from flask import current_app

    from conference.live.broadcast import live_state

    live_state(current_app._get_current_object()).chat_rate = app_limit["LIVE_CHAT_RATE_LIMIT"]
    for i in range(55):
        assert send(sender, f"m{i}", f"id-{i}")["ok"]
    ack = socket_for(person(event, Role.ATTENDEE)).emit("join", {"room": "lobby:live-test"}, callback=True)
    assert [m["text"] for m in ack["history"]] == [f"m{i}" for i in range(5, 55)]
    assert ack["online"] == 2


# --- chat -------------------------------------------------------------------------------------------------

def test_send_stores_acks_and_broadcasts_to_everyone(socket_for: Any, event: Any, person: Any) -> None:
    author = person(event, Role.SPEAKER, name="Erika Muster")
    a, b = joined(socket_for, author), joined(socket_for, person(event, Role.ATTENDEE))
    ack = send(a, "Guten Morgen", "first")
    assert ack["ok"] is True
    message = ack["message"]
    assert message["text"] == "Guten Morgen" and message["client_id"] == "first" and message["room"] == "lobby:live-test"
    assert message["author"] == {"id": author.id, "name": "Erika Muster", "role": "speaker"}
    assert datetime.fromisoformat(message["created_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert events_named(a, "chat:message") == [message]
    assert events_named(b, "chat:message") == [message]
    assert stored_messages() == 1


def test_resend_with_same_client_id_returns_original_once(socket_for: Any, event: Any, person: Any) -> None:
    a, b = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.ATTENDEE))
    first = send(a, "eins", "same")
    again = send(a, "eins (nochmal)", "same")
    assert again == first
    assert len(events_named(b, "chat:message")) == 1
    assert stored_messages() == 1


def test_same_client_id_from_other_author_is_new_message(socket_for: Any, event: Any, person: Any) -> None:
    a, b = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.ATTENDEE))
    assert send(a, "a", "x")["message"]["id"] != send(b, "b", "x")["message"]["id"]


def test_history_after_id_pages_through_everything(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    ids = [send(a, f"t{i}", f"h{i}")["message"]["id"] for i in range(5)]
    ack = a.emit("chat:history", {"room": "lobby:live-test", "after_id": ids[1]}, callback=True)
    assert [m["id"] for m in ack["messages"]] == ids[2:] and ack["has_more"] is False
    ack = a.emit("chat:history", {"room": "lobby:live-test", "after_id": ids[-1]}, callback=True)
    assert ack["messages"] == []


def test_forged_author_fields_are_ignored(socket_for: Any, event: Any, person: Any) -> None:
    user = person(event, Role.ATTENDEE, name="Echte Person")
    a = joined(socket_for, user)
    ack = a.emit("chat:send", {"room": "lobby:live-test", "text": "hi", "client_id": "f1",
                               "author": {"id": 999, "name": "Orga", "role": "organiser"},
                               "created_at": "2000-01-01T00:00:00+00:00", "id": 1234}, callback=True)
    assert ack["message"]["author"] == {"id": user.id, "name": "Echte Person", "role": "attendee"}
    assert ack["message"]["created_at"].startswith(str(datetime.now(UTC).year))


@pytest.mark.parametrize("payload,error", [
    ({"room": "lobby:live-test", "text": "", "client_id": "e1"}, "empty"),
    ({"room": "lobby:live-test", "text": "   \n ", "client_id": "e1"}, "empty"),
    ({"room": "lobby:live-test", "text": "x" * 2001, "client_id": "e1"}, "too_long"),
    ({"room": "lobby:live-test", "text": 5, "client_id": "e1"}, "invalid"),
    ({"room": "lobby:live-test", "text": ["a"], "client_id": "e1"}, "invalid"),
    ({"room": "lobby:live-test", "client_id": "e1"}, "invalid"),
    ({"room": "lobby:live-test", "text": "hi"}, "invalid"),
    ({"room": "lobby:live-test", "text": "hi", "client_id": 7}, "invalid"),
    ({"room": "lobby:live-test", "text": "hi", "client_id": "x" * 65}, "invalid"),
    ({"room": "lobby:live-test", "text": "hi", "client_id": "<script>"}, "invalid"),
    ({"room": "lobby:live-test", "text": "bad\x00byte", "client_id": "e1"}, "invalid"),
    ({"room": "lobby:live-test", "text": "\u202egnp.exe", "client_id": "e1"}, "invalid"),
    ({"text": "hi", "client_id": "e1"}, "invalid"),
    ({"room": "lobby:nowhere", "text": "hi", "client_id": "e1"}, "unknown_room"),
    ({"room": "event:live-test", "text": "hi", "client_id": "e1"}, "no_chat"),
])
def test_bad_chat_payloads_store_nothing_and_others_notice_nothing(socket_for: Any, event: Any, person: Any,
                                                                   payload: Any, error: str) -> None:
    a, b = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.ATTENDEE))
    ack = a.emit("chat:send", payload, callback=True)
    assert ack["ok"] is False and ack["error"] == error and isinstance(ack["message"], str)
    assert stored_messages() == 0
    assert noticed(b) == []


@pytest.mark.parametrize("args", [("text",), (5,), ([1, 2],), (None,), ({"room": "lobby:live-test"}, "extra")])
def test_non_object_payloads_are_refused(socket_for: Any, event: Any, person: Any, args: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    ack = a.emit("chat:send", *args, callback=True)
    assert ack == {"ok": False, "error": "invalid_payload", "message": "Send one JSON object as the payload."}
    assert stored_messages() == 0


def test_oversized_frame_is_not_accepted(app: Any) -> None:
    assert socketio.server.eio.max_http_buffer_size == 64 * 1024


def test_text_limit_2000_is_accepted(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    assert send(a, "x" * 2000, "long")["ok"] is True


def test_unknown_event_is_ignored_safely(socket_for: Any, event: Any, person: Any) -> None:
    a, b = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.ATTENDEE))
    ack = a.emit("chat:explode", {"room": "lobby:live-test"}, callback=True)
    assert ack["ok"] is False and ack["error"] == "unknown_event"
    a.emit("no-ack-event", {"x": 1})
    assert a.is_connected() and noticed(b) == [] and stored_messages() == 0


def test_sending_to_room_not_joined_refused(socket_for: Any, event: Any, person: Any) -> None:
    a = socket_for(person(event, Role.ATTENDEE))
    assert send(a)["error"] == "not_joined"
    assert stored_messages() == 0


def test_leave_stops_delivery(socket_for: Any, event: Any, person: Any) -> None:
    a, b = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.ATTENDEE))
    assert b.emit("leave", {"room": "lobby:live-test"}, callback=True)["ok"] is True
    b.get_received()
    send(a)
    assert events_named(b, "chat:message") == []
    assert send(b, client_id="after-leave")["error"] == "not_joined"


def test_flood_is_rate_limited(socket_for: Any, event: Any, person: Any) -> None:
    a, b = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.ATTENDEE))
    acks = [send(a, f"f{i}", f"flood-{i}") for i in range(7)]
    assert [ack["ok"] for ack in acks] == [True] * 5 + [False] * 2
    assert acks[-1]["error"] == "rate_limited" and acks[-1]["message"]
    assert stored_messages() == 5
    assert len(events_named(b, "chat:message")) == 5


# --- moderation -------------------------------------------------------------------------------------------

def test_moderator_deletes_message_for_everyone(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    mod = joined(socket_for, person(event, Role.MODERATOR))
    message_id = send(a)["message"]["id"]
    a.get_received()
    assert mod.emit("chat:delete", {"message_id": message_id}, callback=True)["ok"] is True
    assert events_named(a, "chat:deleted") == [{"room": "lobby:live-test", "id": message_id}]
    assert a.emit("chat:history", {"room": "lobby:live-test"}, callback=True)["messages"] == []


def test_attendee_cannot_delete(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    b = joined(socket_for, person(event, Role.ATTENDEE))
    message_id = send(a)["message"]["id"]
    a.get_received()
    assert b.emit("chat:delete", {"message_id": message_id}, callback=True)["error"] == "forbidden"
    assert events_named(a, "chat:deleted") == []


def test_moderator_of_other_event_cannot_delete(socket_for: Any, event: Any, create_event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    outsider = socket_for(person(create_event("other-event"), Role.MODERATOR))
    message_id = send(a)["message"]["id"]
    assert outsider.emit("chat:delete", {"message_id": message_id}, callback=True)["error"] == "forbidden"


def test_muted_user_cannot_write_but_reads(socket_for: Any, event: Any, person: Any) -> None:
    victim = person(event, Role.ATTENDEE)
    a = joined(socket_for, victim)
    mod = joined(socket_for, person(event, Role.MODERATOR))
    assert mod.emit("mod:mute", {"room": "lobby:live-test", "user_id": victim.id, "minutes": 10},
                    callback=True)["ok"] is True
    mod.get_received()
    ack = send(a, client_id="muted")
    assert ack["error"] == "muted"
    assert stored_messages() == 0 and events_named(mod, "chat:message") == []
    send(mod, "still here", "mod-1")
    assert len(events_named(a, "chat:message")) == 1


def test_ban_removes_open_socket_and_blocks_rejoin(socket_for: Any, event: Any, person: Any) -> None:
    victim = person(event, Role.ATTENDEE)
    a = joined(socket_for, victim)
    mod = joined(socket_for, person(event, Role.MODERATOR))
    assert mod.emit("mod:ban", {"room": "lobby:live-test", "user_id": victim.id}, callback=True)["ok"] is True
    assert {"room": "lobby:live-test", "reason": "banned"} in events_named(a, "room:removed")
    assert send(a, client_id="banned")["error"] == "not_joined"
    assert a.emit("join", {"room": "lobby:live-test"}, callback=True)["error"] == "banned"
    send(mod, "after ban", "mod-2")
    assert events_named(a, "chat:message") == []


def test_moderators_cannot_be_banned_and_attendees_cannot_ban(socket_for: Any, event: Any, person: Any) -> None:
    mod_user = person(event, Role.MODERATOR)
    attendee = joined(socket_for, person(event, Role.ATTENDEE))
    mod = joined(socket_for, person(event, Role.MODERATOR))
    assert mod.emit("mod:ban", {"room": "lobby:live-test", "user_id": mod_user.id}, callback=True)["error"] == "protected"
    assert attendee.emit("mod:ban", {"room": "lobby:live-test", "user_id": mod_user.id},
                         callback=True)["error"] == "forbidden"


def test_slow_mode(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    mod = joined(socket_for, person(event, Role.MODERATOR))
    assert mod.emit("mod:slow_mode", {"room": "lobby:live-test", "seconds": 30}, callback=True)["ok"] is True
    assert events_named(a, "chat:settings") == [{"room": "lobby:live-test", "slow_mode_seconds": 30}]
    assert send(a, client_id="s1")["ok"] is True
    assert send(a, client_id="s2")["error"] == "slow_mode"
    assert send(mod, client_id="m1")["ok"] and send(mod, client_id="m2")["ok"]  # moderators are exempt


def test_report_goes_to_queue(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    b = joined(socket_for, person(event, Role.ATTENDEE))
    message_id = send(a)["message"]["id"]
    assert b.emit("chat:report", {"message_id": message_id, "reason": "spam"}, callback=True)["ok"] is True
    assert b.emit("chat:report", {"message_id": message_id}, callback=True)["ok"] is True  # once per person
    assert a.emit("chat:report", {"message_id": message_id}, callback=True)["error"] == "own_message"
    assert b.emit("chat:report", {"message_id": "1"}, callback=True)["error"] == "invalid"
    assert b.emit("chat:report", {"message_id": 424242}, callback=True)["error"] == "not_found"
    assert db.session.scalar(select(func.count()).select_from(ChatReport)) == 1


# --- logout, revoked tokens, role changes --------------------------------------------------------------------

def test_logout_disconnects_browser_sockets(app: Any, event: Any, person: Any, client: Any) -> None:
    from tests.fixtures.accounts import csrf_token, login

    user = person(event, Role.ATTENDEE)
    login(client, user.email)
    sock = socketio.test_client(app, flask_test_client=client)
    assert sock.is_connected()
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert not sock.is_connected()


def test_revoked_token_disconnects(app: Any, event: Any, person: Any, client: Any) -> None:
    from conference.auth.models import ApiToken
    from tests.fixtures.accounts import csrf_token, login

    user = person(event, Role.ATTENDEE)
    sock = socket_via_token = None
    from tests.fixtures.accounts import api_token_for

    sock = socketio.test_client(app, auth={"token": api_token_for(user)})
    socket_via_token = sock
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == user.id))
    login(client, user.email)
    client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(client, "/account")})
    assert not socket_via_token.is_connected()


def test_losing_registration_removes_from_rooms(app: Any, socket_for: Any, event: Any, person: Any) -> None:
    from conference.core.after_commit import commit
    from conference.events.models import EventMembership

    user = person(event, Role.ATTENDEE)
    a = joined(socket_for, user)
    db.session.execute(EventMembership.__table__.delete().where(EventMembership.user_id == user.id))
    from conference.core.signals import membership_changed

    commit()
    membership_changed.send(app, user_id=user.id, event_id=event.id)
    assert {"room": "lobby:live-test", "reason": "not_registered"} in events_named(a, "room:removed")


def test_role_change_applies_to_open_socket(socket_for: Any, event: Any, person: Any, grant: Any) -> None:
    user = person(event, Role.ATTENDEE)
    a = joined(socket_for, user)
    victim = joined(socket_for, person(event, Role.ATTENDEE))
    message_id = send(victim)["message"]["id"]
    assert a.emit("chat:delete", {"message_id": message_id}, callback=True)["error"] == "forbidden"
    grant(event, user, Role.MODERATOR)
    assert events_named(a, "live:role")[-1]["is_moderator"] is True
    assert a.emit("chat:delete", {"message_id": message_id}, callback=True)["ok"] is True


# --- Q&A, presence, reactions, announcements, agenda --------------------------------------------------------

def test_questions_vote_sort_and_answer(socket_for: Any, event: Any, person: Any, create_session: Any) -> None:
    session = create_session(event)
    room = f"session:{session.id}"
    asker, voter1, voter2 = (joined(socket_for, person(event, Role.ATTENDEE), room) for _ in range(3))
    mod = joined(socket_for, person(event, Role.MODERATOR), room)
    q1 = asker.emit("qa:ask", {"room": room, "text": "Erste Frage?", "client_id": "q1"}, callback=True)["question"]
    q2 = asker.emit("qa:ask", {"room": room, "text": "Zweite Frage?", "client_id": "q2"}, callback=True)["question"]
    assert events_named(voter1, "qa:question") == [q1, q2]
    assert voter1.emit("qa:vote", {"question_id": q2["id"]}, callback=True)["question"]["votes"] == 1
    assert voter1.emit("qa:vote", {"question_id": q2["id"]}, callback=True)["question"]["votes"] == 1  # one vote each
    assert voter2.emit("qa:vote", {"question_id": q2["id"]}, callback=True)["question"]["votes"] == 2
    assert asker.emit("qa:vote", {"question_id": q1["id"]}, callback=True)["error"] == "own_question"
    listing = voter1.emit("qa:list", {"room": room}, callback=True)["questions"]
    assert [(q["id"], q["votes"], q["voted"]) for q in listing] == [(q2["id"], 2, True), (q1["id"], 0, False)]
    assert voter1.emit("qa:answer", {"question_id": q1["id"]}, callback=True)["error"] == "forbidden"
    answered = mod.emit("qa:answer", {"question_id": q1["id"], "answer": "Ja."}, callback=True)["question"]
    assert answered["is_answered"] is True and answered["answer"] == "Ja."
    assert answered in events_named(voter2, "qa:updated")
    assert db.session.scalar(select(func.count()).select_from(Question)) == 2


def test_questions_only_in_session_rooms(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    ack = a.emit("qa:ask", {"room": "lobby:live-test", "text": "?", "client_id": "q"}, callback=True)
    assert ack["error"] == "no_qa"


def test_moderator_hides_question_live_and_restores_it_with_its_votes(socket_for: Any, event: Any, person: Any,
                                                                       create_session: Any) -> None:
    session = create_session(event)
    room = f"session:{session.id}"
    author, voter = person(event, Role.ATTENDEE), person(event, Role.ATTENDEE)
    asker, watcher = joined(socket_for, author, room), joined(socket_for, voter, room)
    mod = joined(socket_for, person(event, Role.MODERATOR), room)
    question = asker.emit("qa:ask", {"room": room, "text": "Unpassend?", "client_id": "h1"}, callback=True)["question"]
    assert question["is_hidden"] is False
    assert watcher.emit("qa:vote", {"question_id": question["id"]}, callback=True)["question"]["votes"] == 1
    for client in (asker, watcher, mod):
        client.get_received()

    ack = mod.emit("qa:hide", {"question_id": question["id"]}, callback=True)
    assert ack["ok"] is True and ack["question"]["is_hidden"] is True and ack["question"]["votes"] == 1
    for client in (asker, watcher, mod):  # the whole room, the author and the moderator included
        assert events_named(client, "qa:hidden") == [{"room": room, "id": question["id"]}]
    assert watcher.emit("qa:list", {"room": room}, callback=True)["questions"] == []
    assert asker.emit("qa:list", {"room": room}, callback=True)["questions"] == []  # gone for the author too
    marked = mod.emit("qa:list", {"room": room}, callback=True)["questions"]
    assert [(q["id"], q["is_hidden"], q["votes"]) for q in marked] == [(question["id"], True, 1)]
    assert watcher.emit("qa:vote", {"question_id": question["id"]}, callback=True)["error"] == "hidden"

    ack = mod.emit("qa:unhide", {"question_id": question["id"]}, callback=True)
    assert ack["ok"] is True and ack["question"]["is_hidden"] is False
    restored = events_named(watcher, "qa:restored")
    assert restored == [ack["question"]] and restored[0]["votes"] == 1 and restored[0]["text"] == "Unpassend?"
    listing = watcher.emit("qa:list", {"room": room}, callback=True)["questions"]
    assert [(q["id"], q["votes"], q["voted"], q["is_hidden"]) for q in listing] == [(question["id"], 1, True, False)]


def test_hide_and_unhide_refusals(socket_for: Any, event: Any, person: Any, create_session: Any) -> None:
    session = create_session(event)
    room = f"session:{session.id}"
    author = person(event, Role.ATTENDEE)
    asker, watcher = joined(socket_for, author, room), joined(socket_for, person(event, Role.ATTENDEE), room)
    mod = joined(socket_for, person(event, Role.MODERATOR), room)
    question_id = asker.emit("qa:ask", {"room": room, "text": "Frage", "client_id": "r1"}, callback=True)["question"]["id"]
    watcher.get_received()
    assert asker.emit("qa:hide", {"question_id": question_id}, callback=True)["error"] == "forbidden"
    assert watcher.emit("qa:hide", {"question_id": question_id}, callback=True)["error"] == "forbidden"
    assert mod.emit("qa:unhide", {"question_id": question_id}, callback=True)["error"] == "not_hidden"
    for payload, error in (({}, "invalid"), ({"question_id": "x"}, "invalid"), ({"question_id": 99999}, "not_found")):
        assert mod.emit("qa:hide", payload, callback=True)["error"] == error
    assert mod.emit("qa:hide", {"question_id": question_id}, callback=True)["ok"] is True
    assert mod.emit("qa:hide", {"question_id": question_id}, callback=True)["error"] == "already_hidden"
    assert watcher.emit("qa:unhide", {"question_id": question_id}, callback=True)["error"] == "forbidden"
    assert [p["name"] for p in watcher.get_received() if p["name"].startswith("qa:")] == ["qa:hidden"]
    db.session.expire_all()
    assert db.session.get(Question, question_id).is_hidden


def test_question_report_goes_to_queue(socket_for: Any, event: Any, person: Any, create_session: Any) -> None:
    session = create_session(event)
    room = f"session:{session.id}"
    asker, other = joined(socket_for, person(event, Role.ATTENDEE), room), joined(socket_for, person(event, Role.ATTENDEE), room)
    question_id = asker.emit("qa:ask", {"room": room, "text": "?", "client_id": "p1"}, callback=True)["question"]["id"]
    first = other.emit("qa:report", {"question_id": question_id, "reason": "Werbung"}, callback=True)
    assert first["ok"] is True
    assert other.emit("qa:report", {"question_id": question_id}, callback=True) == first  # once per person
    assert asker.emit("qa:report", {"question_id": question_id}, callback=True)["error"] == "own_question"
    assert other.emit("qa:report", {"question_id": question_id, "reason": 5}, callback=True)["error"] == "invalid"
    report = db.session.scalar(select(ChatReport))
    assert (report.question_id, report.message_id, report.reason) == (question_id, None, "Werbung")
    assert db.session.scalar(select(func.count()).select_from(ChatReport)) == 1


def wait_for(client: Any, name: str, timeout: float = 2.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events_named(client, name)
        if found:
            return found
        time.sleep(0.02)
    return []


def test_presence_is_aggregated_and_moderators_see_who(socket_for: Any, event: Any, person: Any) -> None:
    mod = joined(socket_for, person(event, Role.MODERATOR))
    for _ in range(3):
        joined(socket_for, person(event, Role.ATTENDEE))
    updates: list[Any] = []
    deadline = time.monotonic() + 3
    while (not updates or updates[-1]["online"] != 4) and time.monotonic() < deadline:
        updates += wait_for(mod, "presence")  # a flush may fall between two joins: then a second one follows
    assert updates[-1] == {"room": "lobby:live-test", "online": 4}
    assert len(updates) <= 2  # three joins, one or two aggregated updates, never one per join
    who = mod.emit("presence:who", {"room": "lobby:live-test"}, callback=True)
    assert len(who["users"]) == 4
    assert sorted(user["role"] for user in who["users"]) == ["attendee", "attendee", "attendee", "moderator"]
    attendee = joined(socket_for, person(event, Role.ATTENDEE))
    assert attendee.emit("presence:who", {"room": "lobby:live-test"}, callback=True)["error"] == "forbidden"


def test_reactions_are_aggregated(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    for _ in range(4):
        assert a.emit("react", {"room": "lobby:live-test", "reaction": "applause"}, callback=True)["ok"]
    assert a.emit("react", {"room": "lobby:live-test", "reaction": "<b>"}, callback=True)["error"] == "invalid"
    updates = wait_for(a, "reactions")
    assert sum(u["counts"].get("applause", 0) for u in updates) == 4
    assert len(updates) <= 2


def test_announcement_reaches_every_room_of_event_once(socket_for: Any, event: Any, person: Any,
                                                       create_session: Any) -> None:
    session = create_session(event)
    in_lobby = joined(socket_for, person(event, Role.ATTENDEE))
    in_both = joined(socket_for, person(event, Role.ATTENDEE))
    assert in_both.emit("join", {"room": f"session:{session.id}"}, callback=True)["ok"]
    in_both.get_received()
    orga = socket_for(person(event, Role.ORGANISER))
    ack = orga.emit("announce", {"event": "live-test", "text": "Pause bis 11 Uhr"}, callback=True)
    assert ack["ok"] is True
    assert [a["text"] for a in events_named(in_lobby, "announcement")] == ["Pause bis 11 Uhr"]
    assert len(events_named(in_both, "announcement")) == 1
    mod = socket_for(person(event, Role.MODERATOR))
    assert mod.emit("announce", {"event": "live-test", "text": "x"}, callback=True)["error"] == "forbidden"


def test_agenda_release_pushes_agenda_changed(app: Any, socket_for: Any, event: Any, person: Any,
                                              create_session: Any) -> None:
    from conference.core.signals import agenda_released

    session = create_session(event)
    lobby = joined(socket_for, person(event, Role.ATTENDEE))
    session_client = joined(socket_for, person(event, Role.ATTENDEE), f"session:{session.id}")
    agenda_released.send(app, event_id=event.id, version=3)
    expected = {"event": "live-test", "reason": "release", "version": 3}
    assert events_named(lobby, "agenda:changed") == [expected]
    assert events_named(session_client, "agenda:changed") == [expected]


def test_session_chat_closes_after_session_and_archive_shows(socket_for: Any, event: Any, person: Any,
                                                             create_session: Any, client: Any) -> None:
    from tests.fixtures.accounts import login

    past = create_session(event, start=datetime.now(UTC) - timedelta(hours=3))
    room = f"session:{past.id}"
    db.session.add(ChatMessage(event_id=event.id, room=room, author_id=person(event, Role.ATTENDEE).id,
                               author_name="Alte Nachricht", author_role="attendee", text="<b>archiviert</b>",
                               client_id="old"))
    db.session.commit()
    user = person(event, Role.ATTENDEE)
    a = joined(socket_for, user, room)
    assert send(a, room=room, client_id="late")["error"] == "room_closed"
    from conference.live.routes import session_context

    login(client, user.email)
    with client.application.test_request_context():
        from flask_login import login_user

        login_user(user)
        context = session_context(event, past)
    assert context["is_closed"] is True and [m.text for m in context["archive"]] == ["<b>archiviert</b>"]
