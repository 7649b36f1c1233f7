"""Malformed ids and numbers: every id in every route of the URL map, the JSON id fields, the query parameters,
form numbers and the socket payloads, each with digits that are not ASCII, out of range or not numbers at all.

A path answers 404, a field 400 naming the field (a socket: an error ack naming it); never a 5xx, never the
object that "٣" (Arabic-Indic three) would stand for if Python's `int()` decided.
"""

from __future__ import annotations

import re
import tempfile
from typing import Any
from urllib.parse import unquote

import pytest
from flask import url_for
from flask_socketio import SocketIOTestClient
from sqlalchemy import select
from werkzeug.routing.converters import AnyConverter, NumberConverter, PathConverter, UnicodeConverter

from conference import create_app
from conference.agenda.models import TimetableSlot
from conference.auth.models import ApiToken
from conference.core.ids import MAX_ID, IdConverter, parse_id
from conference.extensions import db, socketio
from conference.live.sockets import HANDLERS
from tests.security.conftest import Evidence, StateGuard, World, assert_refused

#: What a client may put where an id belongs in a path (percent-encoded as it travels).
BAD_PATH_IDS = {
    "superscript two": "%C2%B2",
    "arabic-indic three": "%D9%A3",
    "fullwidth one": "%EF%BC%91",
    "zero": "0",
    "minus one": "-1",
    "2^63": str(2**63),
    "23 digits": "12345678901234567890123",
    "exponent": "1e3",
    "leading space": "%201",
}

#: The same in JSON and socket payloads, as the decoded values a parser hands over.
BAD_JSON_IDS: dict[str, Any] = {
    "23 digits": 12345678901234567890123,
    "2^63": 2**63,
    "zero": 0,
    "minus one": -1,
    # A whole number written with an exponent (1e3) is that number, as JSON Schema's "integer" says (the API
    # accepts it like 1000); one beyond the range is not.
    "exponent beyond the range": 1e300,
    "fraction": 1.5,
    "string": "1",
    "arabic-indic three": "\u0663",
    "superscript two": "\u00b2",
    "leading space": " 1",
    "true": True,
    "list": [1],
    "object": {"id": "1"},
}

INT_ARGUMENT = re.compile(r"<int:(\w+)>")


def _map_app() -> Any:
    return create_app({"INSTANCE_PATH": tempfile.mkdtemp(prefix="ids-"), "SECRET_KEY": "x", "TESTING": True,
                       "DATABASE_URL": "sqlite://", "ASYNC_MODE": "threading"})


def _id_cells() -> list[tuple[str, str, str, str]]:
    """(endpoint, method, rule, argument) for every id argument of every rule and method in the URL map."""
    cells = []
    for rule in _map_app().url_map.iter_rules():
        for argument in INT_ARGUMENT.findall(rule.rule):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                cells.append((rule.endpoint, method, rule.rule, argument))
    return sorted(cells)


ID_CELLS = _id_cells()


def test_every_number_in_the_url_map_is_an_id() -> None:
    """No rule may use another number converter (werkzeug's `int`, `float`, `int(signed=True)`, ...)."""
    app = _map_app()
    kinds = {(rule.rule, name): type(converter) for rule in app.url_map.iter_rules()
             for name, converter in rule._converters.items()}
    assert {kind for kind in kinds.values()} <= {IdConverter, UnicodeConverter, PathConverter, AnyConverter}
    assert not [key for key, kind in kinds.items() if issubclass(kind, NumberConverter)]
    assert [kind for key, kind in kinds.items() if key[1].endswith("_id")] == [IdConverter] * len(
        [key for key in kinds if key[1].endswith("_id")])
    assert len(ID_CELLS) > 40  # the generator sees the routes (a broken pattern would make the matrix empty)


@pytest.mark.parametrize("value", ["1", "42", str(MAX_ID), "0042"])
def test_parse_id_accepts_ascii_digits_in_range(value: str) -> None:
    assert parse_id(value) == int(value)


@pytest.mark.parametrize("value", ["0", "-1", str(2**63), "1" * 23, "1e3", " 1", "1 ", "\u0663", "\u00b2",
                                   "\uff11", "", "+1", "1_000", 0, -1, 2**63, True, 1.0, None, [1]])
def test_parse_id_refuses_everything_else(value: Any) -> None:
    assert parse_id(value) is None


def _url_values(world: World) -> dict[str, Any]:
    slot = db.session.scalar(select(TimetableSlot).where(TimetableSlot.session_id == world.foreign_session.id))
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == world.users["organiser"].id))
    assert slot is not None and token is not None
    return {"slug": world.event.slug, "session_id": world.foreign_session.id,
            "presentation_id": world.foreign_presentation_id, "slot_id": slot.id, "room_id": world.room.id,
            "track_id": world.track.id, "report_id": world.report.id, "sanction_id": world.sanction.id,
            "token_id": token.id, "speaker_id": world.foreign_profile.id, "token": "x", "action": "cancel"}


MARKER = 987654321987


@pytest.mark.parametrize(("endpoint", "method", "rule", "argument"), ID_CELLS,
                         ids=[f"{m} {e} {a}" for e, m, _r, a in ID_CELLS])
def test_malformed_path_id_is_not_found(endpoint: str, method: str, rule: str, argument: str, world: World,
                                        guard: StateGuard, evidence: Evidence) -> None:
    """Asked by the organiser (who may do everything there), with a valid CSRF token or API token: only the id
    is wrong, and the answer is 404 before any permission, CSRF or body check."""
    values = _url_values(world)
    values[argument] = MARKER
    with world.app.test_request_context():
        template = url_for(endpoint, **{k: v for k, v in values.items() if f"<{k}>" in rule or f":{k}>" in rule})
    assert str(MARKER) in template
    csrf = world.csrf("organiser")
    guard.take()
    for what, bad in BAD_PATH_IDS.items():
        url = template.replace(str(MARKER), bad)
        if rule.startswith("/api/"):
            response = world.app.test_client().open(
                url, method=method, headers={"Authorization": f"Bearer {world.tokens['organiser']}"}, json={})
        else:
            response = world.client("organiser").open(url, method=method, data={"csrf_token": csrf})
        response.close()
        assert_refused(response, 404, evidence, f"{method} {url} ({what})")
    guard.assert_unchanged(f"{method} {rule}")


def test_calendar_token_with_malformed_feed_id_is_not_found(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    for what, bad in BAD_PATH_IDS.items():
        response = client.get(f"/events/alpha/calendar/{bad}-{'a' * 40}.ics")
        assert_refused(response, 404, evidence, f"calendar token ({what})")


# --- query parameters ----------------------------------------------------------------------------------------


def test_malformed_after_id_in_the_history_api_names_the_field(world: World, evidence: Evidence) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['attendee']}"}
    client = world.app.test_client()
    for what, bad in {**BAD_PATH_IDS, "25 digits": "1" * 25}.items():
        if bad == "0":
            continue  # a cursor may start at 0
        response = client.get(f"/api/v1/events/alpha/chat?room=lobby:alpha&after_id={bad}", headers=headers)
        assert_refused(response, 400, evidence, f"after_id {what}")
        assert response.get_json()["field"] == "after_id"
    assert client.get("/api/v1/events/alpha/chat?room=lobby:alpha&after_id=0", headers=headers).status_code == 200


def test_malformed_session_room_in_the_history_api_is_an_unknown_room(world: World, evidence: Evidence) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['attendee']}"}
    for what, bad in BAD_PATH_IDS.items():
        response = world.app.test_client().get(f"/api/v1/events/alpha/chat?room=session:{bad}", headers=headers)
        assert_refused(response, 404, evidence, f"room session:{what}")
        assert response.get_json()["field"] == "room"


def test_malformed_track_filter_is_ignored_on_the_public_agenda(world: World, evidence: Evidence) -> None:
    """A filter narrows a public page and never fails it (tests/agenda/test_routes.py: `track=abc`)."""
    for what, bad in BAD_PATH_IDS.items():  # the security world is released already
        response = world.app.test_client().get(f"/events/alpha/agenda?track={bad}")
        evidence.response(response, refused=False, what=f"?track= {what}")
        assert response.status_code == 200, (what, response.status_code)
        assert "Fremder Vortrag" in response.get_data(as_text=True)  # unfiltered


# --- JSON id fields ------------------------------------------------------------------------------------------


def _json_cases(world: World) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, url, field, body with the field set to BAD) for every id field of the JSON API."""
    slot = db.session.scalar(select(TimetableSlot).where(TimetableSlot.session_id == world.foreign_session.id))
    assert slot is not None
    times = {"start": "2099-05-04T15:00:00+02:00", "end": "2099-05-04T15:30:00+02:00"}
    sessions = "/api/v1/events/alpha/sessions"
    session = f"{sessions}/{world.foreign_session.id}"
    return [
        ("POST", sessions, "track_id", {"title": "Neu", "track_id": "BAD"}),
        ("POST", sessions, "room_id", {"title": "Neu", "room_id": "BAD", **times}),
        ("POST", sessions, "speakers", {"title": "Neu", "speakers": ["BAD"]}),
        ("POST", sessions, "speakers", {"title": "Neu", "speakers": [{"id": "BAD", "role": "speaker"}]}),
        ("PATCH", session, "track_id", {"track_id": "BAD"}),
        ("PATCH", session, "room_id", {"room_id": "BAD"}),
        ("PATCH", session, "speakers", {"speakers": ["BAD"]}),
        ("POST", f"{session}/slots", "room_id", {"room_id": "BAD", **times}),
        ("PATCH", f"/api/v1/events/alpha/slots/{slot.id}", "room_id", {"room_id": "BAD"}),
    ]


def _with_bad(body: Any, bad: Any) -> Any:
    if body == "BAD":
        return bad
    if isinstance(body, dict):
        return {key: _with_bad(value, bad) for key, value in body.items()}
    if isinstance(body, list):
        return [_with_bad(value, bad) for value in body]
    return body


def test_malformed_json_ids_name_the_field(world: World, guard: StateGuard, evidence: Evidence) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['organiser']}"}
    guard.take()
    for method, url, field, body in _json_cases(world):
        for what, bad in BAD_JSON_IDS.items():
            response = world.app.test_client().open(url, method=method, headers=headers, json=_with_bad(body, bad))
            assert_refused(response, 400, evidence, f"{method} {url} {field}={what}")
            assert response.get_json()["field"] == field, (method, url, what, response.get_json())
    guard.assert_unchanged("json ids")


def test_valid_json_id_still_works(world: World, evidence: Evidence) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['organiser']}"}
    response = world.app.test_client().post("/api/v1/events/alpha/sessions", headers=headers, json={
        "title": "Mit Track", "track_id": world.track.id, "speakers": [{"id": world.own_profile.id}]})
    evidence.response(response, refused=False, what="valid ids")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["session"]["track"] == world.track.name


# --- form numbers --------------------------------------------------------------------------------------------


def test_malformed_numbers_in_organiser_forms_are_refused(world: World, guard: StateGuard,
                                                          evidence: Evidence) -> None:
    client = world.client("organiser")
    csrf = world.csrf("organiser")
    forms: list[tuple[str, str, dict[str, str]]] = [
        ("/manage/events/alpha/agenda/sessions", "speakers-0-speaker",
         {"title": "Neu", "kind": "talk", "language": "de", "track_id": "", "speakers-0-role": "speaker"}),
        (f"/manage/events/alpha/agenda/sessions/{world.foreign_session.id}", "speakers-0-speaker",
         {"title": "Neu", "kind": "talk", "language": "de", "track_id": "", "speakers-0-role": "speaker"}),
        ("/manage/events/alpha/live/sanctions", "minutes", {"email": "attendee@example.org", "kind": "mute"}),
        ("/manage/events/alpha/live/slow-mode", "seconds", {"room": "lobby:alpha"}),
        ("/manage/events/alpha/live/retention", "chat_retention_days", {}),
    ]
    guard.take()
    for url, name, data in forms:
        for what, bad in BAD_PATH_IDS.items():
            if (bad == "0" and name != "speakers-0-speaker") or what == "leading space":
                continue  # zero minutes/seconds/days are numbers (the services judge the range); forms strip
            response = client.post(url, data={**data, "csrf_token": csrf, name: unquote(bad)})
            redirected = response.status_code in (302, 303)
            # The editor and the moderation page refuse by redirecting back with an error message (checked
            # below, with the unchanged state): a refusal, not an acceptance, for the evidence counters.
            evidence.response(response, refused=not redirected, what=f"{url} {name}={what}")
            assert response.status_code < 500, (url, name, what, response.status_code)
            if redirected:
                page = client.get(response.headers["Location"]).get_data(as_text=True)
                assert "Saved." not in page and "saved." not in page, (url, name, what)
                assert 'class="flash flash-error"' in page, (url, name, what)
            else:
                assert response.status_code == 400, (url, name, what, response.status_code)
    guard.assert_unchanged("form numbers")


def test_invitation_form_takes_ids_in_ascii_only(world: World, guard: StateGuard, evidence: Evidence) -> None:
    """Arabic-Indic digits are a number to `int()`; a select field of ids must not take them for the session."""
    client = world.client("organiser")
    csrf = world.csrf("organiser")
    guard.take()
    arabic = str(world.foreign_session.id).translate(str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664"
                                                                                  "\u0665\u0666\u0667\u0668\u0669"))
    for what, value in (("arabic-indic", arabic), ("fullwidth", "\uff11"),
                        ("23 digits", "1" * 23), ("superscript", "\u00b2")):
        response = client.post("/manage/events/alpha/speakers/invite", data={
            "csrf_token": csrf, "session_id": value, "speaker_id": "0", "name": "Neu", "email": "neu@example.org",
            "role": "speaker"})
        assert_refused(response, 400, evidence, f"invitation session_id {what}")
    guard.assert_unchanged("invitation ids")
    response = client.post("/manage/events/alpha/speakers/invite", data={
        "csrf_token": csrf, "session_id": str(world.foreign_session.id), "speaker_id": "0", "name": "Neu",
        "email": "neu@example.org", "role": "speaker"})
    evidence.response(response, refused=False, what="invitation with an ASCII id")
    assert response.status_code == 303


# --- socket payloads -----------------------------------------------------------------------------------------

#: Socket events and the id field each reads from its payload.
SOCKET_ID_FIELDS = {"chat:delete": "message_id", "chat:report": "message_id", "mod:mute": "user_id",
                    "mod:ban": "user_id", "qa:vote": "question_id", "qa:answer": "question_id",
                    "chat:history": "after_id"}


def _socket(world: World, who: str) -> SocketIOTestClient:
    client = socketio.test_client(world.app, auth={"token": world.tokens[who]})
    assert client.is_connected()
    ack = client.emit("join", {"room": "lobby:alpha"}, callback=True)
    assert ack["ok"] is True, ack
    return client


def _socket_refused(ack: Any, evidence: Evidence, what: str) -> None:
    evidence.add("variants")
    if isinstance(ack, dict) and ack.get("error") == "internal":
        evidence.note("server_errors", f"socket {what}")
    if isinstance(ack, dict) and ack.get("ok") is True:
        evidence.note("wrongly_accepted", f"socket {what}")
    assert isinstance(ack, dict) and ack.get("ok") is False, (what, ack)
    assert ack.get("error") != "internal" and "Traceback" not in str(ack.get("message")), (what, ack)


def test_malformed_socket_ids_name_the_field(world: World, guard: StateGuard, evidence: Evidence) -> None:
    client = _socket(world, "organiser")
    guard.take()
    for event, name in SOCKET_ID_FIELDS.items():
        for what, bad in BAD_JSON_IDS.items():
            if name == "after_id" and bad == 0:
                continue  # the history cursor starts at 0
            payload = {"room": "lobby:alpha", "reason": "spam", "answer": "ja", name: bad}
            ack = client.emit(event, payload, callback=True)
            _socket_refused(ack, evidence, f"{event} {name}={what}")
            assert ack["error"] == "invalid" and ack["field"] == name, (event, what, ack)
    guard.assert_unchanged("socket ids")
    client.disconnect()


@pytest.mark.parametrize("event", sorted(HANDLERS))
def test_every_socket_event_survives_malformed_ids(event: str, world: World, guard: StateGuard,
                                                   evidence: Evidence) -> None:
    """Every handler, with every id-like field and a session room set to each bad value: a refusal, never an
    internal error (the fields a handler does not read change nothing)."""
    client = _socket(world, "organiser")
    guard.take()
    for what, bad in BAD_JSON_IDS.items():
        room_key = str(bad) if parse_id(str(bad)) is None else "0"  # "1" and 1 name a real session room
        payload = {"room": f"session:{room_key}", "message_id": bad, "user_id": bad, "question_id": bad,
                   "after_id": bad, "text": "Hallo", "client_id": "c-ids", "reason": "x", "answer": "x",
                   "reaction": "heart", "event": "alpha", "seconds": 5, "minutes": 5}
        ack = client.emit(event, payload, callback=True)
        if event == "announce":  # needs no id and no room: the one event that may succeed here
            evidence.add("variants")
            assert isinstance(ack, dict) and ack.get("error") != "internal", (event, what, ack)
            continue
        _socket_refused(ack, evidence, f"{event} ({what})")
    if event != "announce":
        guard.assert_unchanged(event)
    client.disconnect()
