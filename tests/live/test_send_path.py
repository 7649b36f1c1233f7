"""The fast chat path: one INSERT per message, cached standings and rooms that still see every change at once,
resends after a refusal, deletions reported to clients that catch up, and the per-process caches themselves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from conference.auth.models import User
from conference.core.after_commit import commit
from conference.core.cache import ExpiringCache
from conference.core.db import utcnow
from conference.core.permissions import Role
from conference.extensions import db
from conference.live import access, chat, moderation, rooms
from conference.live.broadcast import RecentPayloads, live_state
from conference.live.models import ChatMessage, LiveSanction
from tests.conftest import settings_for_tests
from tests.fixtures.live import events_named

LOBBY = "lobby:live-test"


@pytest.fixture
def app_settings(tmp_path: Any) -> dict[str, Any]:
    return settings_for_tests(tmp_path, LIVE_AGGREGATE_INTERVAL=0.05, LIVE_CHAT_RATE_LIMIT=(100, 60))


@pytest.fixture
def event(create_event: Any) -> Any:
    return create_event("live-test")


def joined(socket_for: Any, user: Any, room: str = LOBBY) -> Any:
    client = socket_for(user)
    ack = client.emit("join", {"room": room}, callback=True)
    assert ack["ok"] is True, ack
    client.get_received()
    return client


def send(client: Any, text: str = "Hallo", client_id: str = "c1", room: str = LOBBY) -> Any:
    return client.emit("chat:send", {"room": room, "text": text, "client_id": client_id}, callback=True)


@contextmanager
def statements() -> Iterator[list[str]]:
    """The statements SQLite itself runs (SELECT/INSERT/UPDATE/DELETE), whichever layer sent them: the chat
    INSERT goes to the driver directly (`core.db.execute_committed`), past SQLAlchemy's events."""
    seen: list[str] = []

    def trace(sql: str) -> None:
        word = sql.split(None, 1)[0].upper() if sql.strip() else ""
        if word in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            seen.append(word)

    def traced(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.set_trace_callback(trace)

    engine = db.engine
    db.session.close()
    engine.dispose()  # every connection from here on is a new, traced one
    sa_event.listen(engine, "connect", traced)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "connect", traced)
        db.session.close()
        engine.dispose()


# --- one INSERT per message --------------------------------------------------------------------------------

def test_send_with_warm_caches_runs_one_insert_and_nothing_else(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    assert send(a, "warm", "w0")["ok"] is True  # the join cached room and standing
    with statements() as seen:
        ack = send(a, "eins", "w1")
    assert ack["ok"] is True
    assert seen == ["INSERT"]


@pytest.mark.parametrize("session_busy", [False, True], ids=["own-transaction", "session-transaction"])
def test_post_message_stores_in_either_transaction(event: Any, person: Any, session_busy: bool) -> None:
    """Warm caches leave the session idle: the INSERT runs in a transaction of its own. When the session holds
    a connection already (a cache was loaded), the INSERT joins it: one connection per handler, never two."""
    author_id = person(event, Role.ATTENDEE).id
    info = rooms.load_room_info(LOBBY)
    standing = access.load_standing(author_id, event.id)
    commit()
    with statements() as seen:
        if session_busy:
            db.session.scalar(select(func.count(ChatMessage.id)))
        assert db.session().in_transaction() is session_busy
        payload, created = chat.post_message(info, author=standing, text="Hallo", client_id="p1")
        commit()
    assert created is True and seen == (["SELECT", "INSERT"] if session_busy else ["INSERT"])
    assert payload["text"] == "Hallo" and payload["author"]["id"] == author_id and payload["room"] == LOBBY
    again, created_again = chat.post_message(info, author=standing, text="anders", client_id="p1")
    commit()
    assert created_again is False and again == payload
    stored = db.session.scalars(select(ChatMessage).where(ChatMessage.room == LOBBY)).all()
    assert [(m.id, m.text) for m in stored] == [(payload["id"], "Hallo")]


def test_resend_hits_the_constraint_and_returns_the_original(socket_for: Any, event: Any, person: Any) -> None:
    a, b = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.ATTENDEE))
    first = send(a, "eins", "same")
    b.get_received()
    with statements() as seen:
        again = send(a, "anders", "same")
    assert again == first
    assert seen == ["INSERT", "SELECT"]  # the INSERT skipped the row; the original is read once
    assert events_named(b, "chat:message") == []
    assert db.session.scalar(select(func.count()).select_from(ChatMessage)) == 1


def test_resend_after_a_mute_still_returns_the_original(socket_for: Any, event: Any, person: Any) -> None:
    victim = person(event, Role.ATTENDEE)
    a, mod = joined(socket_for, victim), joined(socket_for, person(event, Role.MODERATOR))
    first = send(a, "vor der Stummschaltung", "before")
    assert mod.emit("mod:mute", {"room": LOBBY, "user_id": victim.id}, callback=True)["ok"] is True
    assert send(a, "vor der Stummschaltung", "before") == first
    assert send(a, "danach", "after")["error"] == "muted"


# --- cached standings see every change ---------------------------------------------------------------------

def test_mute_and_lift_apply_to_the_next_message(socket_for: Any, event: Any, person: Any) -> None:
    victim = person(event, Role.ATTENDEE)
    a, mod = joined(socket_for, victim), joined(socket_for, person(event, Role.MODERATOR))
    assert send(a, "eins", "m1")["ok"] is True  # standing cached as "not muted"
    assert mod.emit("mod:mute", {"room": LOBBY, "user_id": victim.id, "minutes": 5}, callback=True)["ok"] is True
    assert send(a, "zwei", "m2")["error"] == "muted"
    sanction = db.session.scalar(select(LiveSanction).where(LiveSanction.user_id == victim.id))
    moderator = db.session.get(User, sanction.created_by_id)
    moderation.lift_sanction(sanction, actor=access.load_standing(moderator.id, event.id))
    commit()
    assert send(a, "drei", "m3")["ok"] is True


def test_role_change_drops_the_cached_standing(socket_for: Any, event: Any, person: Any, grant: Any) -> None:
    user = person(event, Role.MODERATOR)
    a = joined(socket_for, user)
    assert send(a, "als Moderatorin", "r1")["message"]["author"]["role"] == "moderator"
    grant(event, user, Role.ATTENDEE)
    assert send(a, "als Teilnehmerin", "r2")["message"]["author"]["role"] == "attendee"


def test_change_made_elsewhere_is_seen_within_the_cache_time(socket_for: Any, event: Any, person: Any) -> None:
    user = person(event, Role.ATTENDEE)
    a = joined(socket_for, user)
    state = live_state(current_app._get_current_object())
    state.standings.ttl = 0.2
    assert send(a, "eins", "e1")["ok"] is True
    # Another worker (or a script) disables the account: no signal reaches this process.
    db.session.execute(User.__table__.update().where(User.id == user.id).values(is_disabled=True))
    db.session.commit()
    time.sleep(0.25)
    assert send(a, "zwei", "e2")["error"] == "unauthenticated"
    assert not a.is_connected()


def test_slow_mode_change_drops_the_cached_room(socket_for: Any, event: Any, person: Any) -> None:
    a, mod = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.MODERATOR))
    assert send(a, "eins", "s1")["ok"] is True
    assert mod.emit("mod:slow_mode", {"room": LOBBY, "seconds": 60}, callback=True)["ok"] is True
    assert send(a, "zwei", "s2")["error"] == "slow_mode"
    assert mod.emit("mod:slow_mode", {"room": LOBBY, "seconds": 0}, callback=True)["ok"] is True
    assert send(a, "drei", "s3")["ok"] is True


# --- deletions reach clients that were away ----------------------------------------------------------------

def test_history_reports_messages_deleted_while_offline(socket_for: Any, event: Any, person: Any) -> None:
    a, mod = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.MODERATOR))
    reader_user = person(event, Role.ATTENDEE)
    reader = joined(socket_for, reader_user)
    ids = [send(a, f"m{i}", f"d{i}")["message"]["id"] for i in range(3)]
    last_seen = ids[-1]
    reader.disconnect()
    assert mod.emit("chat:delete", {"message_id": ids[1]}, callback=True)["ok"] is True
    later = send(a, "neu", "d3")["message"]["id"]
    assert mod.emit("chat:delete", {"message_id": later}, callback=True)["ok"] is True
    newest = send(a, "neuer", "d4")["message"]
    back = joined(socket_for, reader_user)
    ack = back.emit("chat:history", {"room": LOBBY, "after_id": last_seen}, callback=True)
    assert ack["messages"] == [newest]
    assert ack["deleted"] == [ids[1]]  # the later deleted message was never sent to it, so it is not listed


def test_history_without_after_id_has_no_deleted_list(socket_for: Any, event: Any, person: Any) -> None:
    a = joined(socket_for, person(event, Role.ATTENDEE))
    send(a)
    ack = a.emit("chat:history", {"room": LOBBY}, callback=True)
    assert "deleted" not in ack and len(ack["messages"]) == 1


def test_deleted_ids_are_bounded_to_the_newest(app: Any, event: Any, person: Any) -> None:
    author = person(event, Role.ATTENDEE)
    for i in range(5):
        db.session.add(ChatMessage(event_id=event.id, room=LOBBY, author_id=author.id, author_name="x",
                                   author_role="attendee", text=f"t{i}", client_id=f"b{i}",
                                   deleted_at=utcnow()))
    db.session.commit()
    ids = list(db.session.scalars(select(ChatMessage.id).order_by(ChatMessage.id)))
    room = rooms.load_room_info(LOBBY)
    assert chat.deleted_message_ids(room, up_to_id=ids[-1], limit=3) == ids[2:]
    assert chat.deleted_message_ids(room, up_to_id=ids[1]) == ids[:2]
    assert chat.deleted_message_ids(room, up_to_id=0) == []


# --- the caches ----------------------------------------------------------------------------------------------

def test_history_payloads_are_reused_and_skip_deleted(socket_for: Any, event: Any, person: Any) -> None:
    a, mod = joined(socket_for, person(event, Role.ATTENDEE)), joined(socket_for, person(event, Role.MODERATOR))
    first, second = send(a, "eins", "h1")["message"], send(a, "zwei", "h2")["message"]
    state = live_state(current_app._get_current_object())
    assert state.payloads[first["id"]] == first  # put there by the broadcast
    assert mod.emit("chat:delete", {"message_id": first["id"]}, callback=True)["ok"] is True
    with statements() as seen:
        ack = a.emit("chat:history", {"room": LOBBY, "after_id": 0}, callback=True)
    assert ack["messages"] == [second]
    assert seen.count("SELECT") == 1  # ids only; the payload came from the cache


def test_recent_payloads_drop_the_oldest() -> None:
    cache = RecentPayloads(2)
    for i in range(3):
        cache[i] = {"id": i}
    assert list(cache) == [1, 2]


def test_snapshot_cache_reloads_after_ttl_and_forget() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(ttl=60)
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("a", load) == 1 and cache.get("a", load) == 1
    cache.forget(lambda key: key == "a")
    assert cache.get("a", load) == 2
    cache.ttl = 0
    assert cache.get("a", load) == 3


def test_snapshot_cache_does_not_keep_a_load_that_overlapped_forget() -> None:
    cache: ExpiringCache[str, str] = ExpiringCache(ttl=60)

    def stale_load() -> str:
        cache.forget(lambda key: True)  # a moderation change commits while this load runs
        return "stale"

    assert cache.get("a", stale_load) == "stale"
    assert cache.get("a", lambda: "fresh") == "fresh"


# --- grouping in large rooms ---------------------------------------------------------------------------------

class FakeRoom:
    """Synchronous stand-ins for emit, background tasks and sleep, and a room of a chosen size."""

    def __init__(self, size: int, send_seconds: float = 0.0) -> None:
        self.size = size
        self.now = 1000.0  # a clock that moves only when a send takes time
        self.send_seconds = send_seconds
        self.sent: list[tuple[str, Any]] = []
        self.tasks: list[tuple[Any, tuple[Any, ...]]] = []
        self.slept: list[float] = []

    def emit(self, event: str, data: Any, to: str) -> None:
        self.sent.append((event, data))
        self.now += self.send_seconds

    def start_task(self, fn: Any, *args: Any) -> None:
        self.tasks.append((fn, args))

    def run_tasks(self) -> None:
        tasks, self.tasks = self.tasks, []
        for fn, args in tasks:
            fn(*args)

    def broadcaster(self, settle: float = 0.0) -> Any:
        from conference.live.fanout import SizedRoomBroadcaster

        return SizedRoomBroadcaster(emit=self.emit, room_size=lambda room: self.size, start_task=self.start_task,
                                    sleep=self.slept.append, large_room=100, window=0.01, max_window=0.1,
                                    settle=settle, clock=lambda: self.now)


def test_small_rooms_get_every_message_at_once() -> None:
    room = FakeRoom(size=99)
    broadcaster = room.broadcaster()
    for i in range(3):
        broadcaster.publish(LOBBY, {"id": i})
    assert room.sent == [("chat:message", {"id": i}) for i in range(3)] and room.tasks == []


def test_large_busy_rooms_get_one_frame_per_window() -> None:
    room = FakeRoom(size=1000)
    broadcaster = room.broadcaster()
    for i in range(4):
        broadcaster.publish(LOBBY, {"id": i})
    assert room.sent == [("chat:message", {"id": 0})]  # the first goes at once, the rest wait for the window
    room.run_tasks()
    assert room.sent[1:] == [("chat:messages", {"room": LOBBY, "messages": [{"id": 1}, {"id": 2}, {"id": 3}]})]
    assert room.slept == [pytest.approx(0.01 * 10 ** 0.75)]


def test_the_window_counts_from_the_end_of_the_last_send() -> None:
    """Writing one frame to thousands of sockets takes longer than the window: what arrived meanwhile is
    grouped into the next frame, not sent one by one."""
    room = FakeRoom(size=5000, send_seconds=0.15)
    broadcaster = room.broadcaster()
    broadcaster.publish(LOBBY, {"id": 0})
    for i in range(1, 5):
        broadcaster.publish(LOBBY, {"id": i})
    room.run_tasks()
    assert room.sent == [("chat:message", {"id": 0}),
                         ("chat:messages", {"room": LOBBY, "messages": [{"id": i} for i in range(1, 5)]})]
    room.now += 0.1  # a quiet window later, the next message goes at once again
    broadcaster.publish(LOBBY, {"id": 5})
    assert room.sent[-1] == ("chat:message", {"id": 5}) and room.tasks == []


def test_with_settle_the_first_message_waits_and_a_burst_goes_as_one_frame() -> None:
    room = FakeRoom(size=5000)
    broadcaster = room.broadcaster(settle=0.25)
    for i in range(5):
        broadcaster.publish(LOBBY, {"id": i})
    assert room.sent == []
    room.run_tasks()
    assert room.sent == [("chat:messages", {"room": LOBBY, "messages": [{"id": i} for i in range(5)]})]
    assert room.slept == [pytest.approx(0.1 * 0.25)]
    broadcaster.publish(LOBBY, {"id": 5})  # right after a send: the whole window
    room.run_tasks()
    assert room.sent[-1] == ("chat:message", {"id": 5}) and room.slept[-1] == pytest.approx(0.1)
    small = FakeRoom(size=99)
    small.broadcaster(settle=0.25).publish(LOBBY, {"id": 6})
    assert small.sent == [("chat:message", {"id": 6})]  # small rooms stay immediate


def test_group_window_grows_with_the_room_up_to_the_maximum() -> None:
    broadcaster = FakeRoom(size=0).broadcaster()
    assert broadcaster.window_for(100) == pytest.approx(0.01)
    assert broadcaster.window_for(130) == pytest.approx(0.0122, abs=1e-4)
    assert broadcaster.window_for(1000) == pytest.approx(0.0562, abs=1e-4)
    assert broadcaster.window_for(5000) == pytest.approx(0.1)
