"""Property test of the Socket.IO protocol (docs/protocol.md, "Client -> server events"): for every event, payloads
that break its documented schema (wrong types, missing keys, odd and huge strings, nested objects, ids and numbers
out of range) get an error ack `{"ok": false, "error": ...}`, never an internal error, and store nothing."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from conference.core.ids import MAX_ID
from conference.core.permissions import Role
from conference.extensions import db
from conference.live.announcements import ANNOUNCEMENT_LIMIT
from conference.live.models import ANSWER_TEXT_LIMIT, CHAT_TEXT_LIMIT, CLIENT_ID_LIMIT, QUESTION_TEXT_LIMIT

ROOM, EVENT_ROOM = "lobby:live-test", "event:live-test"
REACTIONS = {"applause", "heart", "laugh", "thumbs_up", "idea"}

# Any JSON value, nested a little: what a broken or hostile client sends instead of the documented field.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
not_a_string = json_values.filter(lambda v: not isinstance(v, str))
odd_text = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=60)
forbidden = st.sampled_from(["\x00", "\x07", "\u202e", "\ufffd", "\x7f", "\u2066"])


def too_long(limit: int) -> st.SearchStrategy[str]:
    return st.integers(min_value=limit + 1, max_value=limit + 3000).map(lambda n: "x" * n)


def bad_text(limit: int) -> st.SearchStrategy[Any]:
    blank = st.text(alphabet=" \t\n\r", max_size=10)
    with_forbidden = st.tuples(st.text(alphabet=string.ascii_letters, max_size=10), forbidden).map("".join)
    return not_a_string | blank | too_long(limit) | with_forbidden


bad_room = not_a_string | odd_text.filter(lambda v: v not in (ROOM, EVENT_ROOM)) | too_long(200)
bad_id = (json_values.filter(lambda v: not isinstance(v, (int, float)) or isinstance(v, bool)
                             or (isinstance(v, float) and not v.is_integer()))
          | st.integers(max_value=0) | st.integers(min_value=MAX_ID + 1))
bad_after_id = bad_id.filter(lambda v: v != 0 and v is not None)  # null: no after_id (documented optional)
bad_count = (json_values.filter(lambda v: v is not None and (not isinstance(v, int) or isinstance(v, bool)))
             | st.integers(max_value=-1) | st.integers(min_value=2**53))
bad_client_id = not_a_string | st.just("") | too_long(CLIENT_ID_LIMIT) | st.sampled_from(["a b", "ä", "x/y", "<"])
bad_reaction = not_a_string | odd_text.filter(lambda v: v not in REACTIONS)
bad_event = not_a_string | odd_text.filter(lambda v: v != "live-test")

# event -> (a valid-looking payload, {field: strategy of values that make the payload invalid}); ids of messages
# and questions name nothing that exists, so the fields around them may be anything.
SCHEMAS: dict[str, tuple[dict[str, Any], dict[str, st.SearchStrategy[Any]]]] = {
    "join": ({"room": ROOM}, {"room": bad_room}),
    "leave": ({"room": ROOM}, {"room": bad_room}),
    "chat:send": ({"room": ROOM, "text": "Hallo", "client_id": "p-1"},
                  {"room": bad_room, "text": bad_text(CHAT_TEXT_LIMIT), "client_id": bad_client_id}),
    "chat:history": ({"room": ROOM, "after_id": 0}, {"room": bad_room, "after_id": bad_after_id}),
    "chat:delete": ({"message_id": 1}, {"message_id": bad_id}),
    "chat:report": ({"message_id": 1, "reason": "spam"}, {"message_id": bad_id}),
    "mod:mute": ({"room": ROOM, "user_id": "ATTENDEE", "minutes": 5},
                 {"room": bad_room, "user_id": bad_id, "minutes": bad_count}),
    "mod:ban": ({"room": ROOM, "user_id": "ATTENDEE", "minutes": 5},
                {"room": bad_room, "user_id": bad_id, "minutes": bad_count}),
    "mod:slow_mode": ({"room": ROOM, "seconds": 10}, {"room": bad_room, "seconds": bad_count}),
    "qa:ask": ({"room": ROOM, "text": "Frage?", "client_id": "q-1"},  # the lobby has no Q&A: never stored
               {"room": bad_room, "text": bad_text(QUESTION_TEXT_LIMIT), "client_id": bad_client_id}),
    "qa:list": ({"room": ROOM}, {"room": bad_room}),
    "qa:vote": ({"question_id": 1}, {"question_id": bad_id}),
    "qa:answer": ({"question_id": 1, "answer": "Ja"}, {"question_id": bad_id,
                                                      "answer": bad_text(ANSWER_TEXT_LIMIT)}),
    "qa:hide": ({"question_id": 1}, {"question_id": bad_id}),
    "qa:unhide": ({"question_id": 1}, {"question_id": bad_id}),
    "qa:report": ({"question_id": 1, "reason": "spam"}, {"question_id": bad_id}),
    "react": ({"room": ROOM, "reaction": "applause"}, {"room": bad_room, "reaction": bad_reaction}),
    "presence:who": ({"room": ROOM}, {"room": bad_room}),
    "announce": ({"event": "live-test", "text": "Hinweis"},
                 {"event": bad_event, "text": bad_text(ANNOUNCEMENT_LIMIT)}),
}
REQUIRED_MISSING = {name: [key for key in valid if key not in ("after_id", "reason", "minutes", "answer")]
                    for name, (valid, _bad) in SCHEMAS.items()}


@st.composite
def malformed(draw: st.DrawFn, event: str) -> Any:
    valid, bad = SCHEMAS[event]
    shape = draw(st.sampled_from(["not_an_object", "missing", "broken"]))
    if shape == "not_an_object":
        return draw(json_values.filter(lambda v: not isinstance(v, dict)))
    payload = dict(valid)
    if shape == "missing" and REQUIRED_MISSING[event]:
        for key in draw(st.lists(st.sampled_from(REQUIRED_MISSING[event]), min_size=1, unique=True)):
            del payload[key]
        return payload
    broken = draw(st.lists(st.sampled_from(sorted(bad)), min_size=1, unique=True))
    for key in broken:
        payload[key] = draw(bad[key])
    return payload


def _row_counts() -> dict[str, int]:
    db.session.expire_all()
    return {table.name: db.session.scalar(select(func.count()).select_from(table)) or 0
            for table in db.metadata.sorted_tables}


@pytest.mark.parametrize("event_name", sorted(SCHEMAS))
def test_malformed_payload_gets_error_ack_and_stores_nothing(event_name: str, socket_for: Any, create_event: Any,
                                                             person: Any) -> None:
    event = create_event("live-test")
    organiser = person(event, Role.ORGANISER, email="orga@example.org")
    attendee = person(event, Role.ATTENDEE, email="gast@example.org")
    client = socket_for(organiser)  # every permission: the refusal must come from the payload
    assert client.emit("join", {"room": ROOM}, callback=True)["ok"] is True
    before = _row_counts()
    seen: list[Any] = []

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(payload=malformed(event_name))
    def check(payload: Any) -> None:
        if isinstance(payload, dict) and payload.get("user_id") == "ATTENDEE":
            payload = {**payload, "user_id": attendee.id}
        ack = client.emit(event_name, payload, callback=True)
        seen.append(payload)
        assert isinstance(ack, dict) and ack.get("ok") is False, (payload, ack)
        assert isinstance(ack.get("error"), str) and ack["error"] not in ("internal", "unavailable"), (payload, ack)
        assert _row_counts() == before, (payload, ack)

    check()
    assert len(seen) >= 20
    assert client.is_connected()
