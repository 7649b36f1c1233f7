"""Injection and hostile text on the server side: XSS and template payloads render inert; control characters,
bidi overrides, NUL, invalid UTF-8 and over-long text are refused and change nothing.

The browser check of the same payloads (with a canary that must never fire) is in test_browser_xss.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask_socketio import SocketIOTestClient

from conference.extensions import db, socketio
from tests.fixtures.accounts import csrf_token
from tests.security.conftest import Evidence, StateGuard, World, assert_refused
from tests.security.payloads import TEMPLATE_INJECTION, TEMPLATE_RESULT, WEIRD_TEXT, XSS, live_payloads

Submit = Callable[[World, str], Any]


def _socket(world: World, who: str, room: str) -> SocketIOTestClient:
    client = socketio.test_client(world.app, auth={"token": world.tokens[who]})
    assert client.is_connected()
    ack = client.emit("join", {"room": room}, callback=True)
    assert ack["ok"] is True, ack
    return client


class SocketAck:
    """A socket ack dressed as a response, so socket and HTTP surfaces share the checks."""

    def __init__(self, ack: dict[str, Any]) -> None:
        self.ack = ack
        self.status_code = 200 if ack.get("ok") else 400
        self.headers: dict[str, str] = {}

    def get_data(self, as_text: bool = True) -> str:
        return repr(self.ack)


def _register(world: World, value: str) -> Any:
    client = world.app.test_client()
    token = csrf_token(client, "/register")
    return client.post("/register", data={"csrf_token": token, "name": value, "email": "neu@example.org",
                                          "password": "long-enough-pass-1"})


def _profile(field: str) -> Submit:
    def submit(world: World, value: str) -> Any:
        data = {"csrf_token": world.csrf("speaker"), "name": "Sam Speaker", "bio": "", "links": "", field: value}
        return world.client("speaker").post(f"/events/alpha/speakers/{world.own_profile.id}/edit", data=data)
    return submit


def _session(field: str) -> Submit:
    def submit(world: World, value: str) -> Any:
        body = {"title": "Titel", field: value}
        return world.app.test_client().post("/api/v1/events/alpha/sessions", json=body,
                                            headers={"Authorization": f"Bearer {world.tokens['organiser']}"})
    return submit


def _token_name(world: World, value: str) -> Any:
    return world.client("attendee").post("/account/tokens", data={"csrf_token": world.csrf("attendee"),
                                                                  "name": value})


def _chat(world: World, value: str) -> Any:
    client = _socket(world, "attendee", "lobby:alpha")
    try:
        return SocketAck(client.emit("chat:send", {"room": "lobby:alpha", "text": value, "client_id": "x-1"},
                                     callback=True))
    finally:
        client.disconnect()


def _question(world: World, value: str) -> Any:
    room = f"session:{world.own_session.id}"
    client = _socket(world, "attendee", room)
    try:
        return SocketAck(client.emit("qa:ask", {"room": room, "text": value, "client_id": "q-1"}, callback=True))
    finally:
        client.disconnect()


def _announcement(world: World, value: str) -> Any:
    return world.client("organiser").post("/manage/events/alpha/live/announcements",
                                          data={"csrf_token": world.csrf("organiser"), "text": value})


SURFACES: dict[str, tuple[Submit, int]] = {
    "registration name": (_register, 120),
    "profile name": (_profile("name"), 120),
    "profile organisation": (_profile("organisation"), 160),
    "profile bio": (_profile("bio"), 5000),
    "session title": (_session("title"), 200),
    "session abstract": (_session("abstract"), 20_000),
    "token name": (_token_name, 80),
    "chat text": (_chat, 2000),
    "question text": (_question, 500),
    "announcement": (_announcement, 500),
}


@pytest.mark.parametrize("surface", SURFACES)
def test_hostile_text_is_refused(surface: str, world: World, guard: StateGuard, evidence: Evidence) -> None:
    submit, limit = SURFACES[surface]
    world.csrf("speaker"), world.csrf("attendee"), world.csrf("organiser")  # logins before the snapshot
    guard.take()
    for name, value in [*WEIRD_TEXT, ("over-long", "a" * (limit + 1))]:
        response = submit(world, value)
        assert_refused(response, (400, 413), evidence, f"{surface}: {name}")
        guard.assert_unchanged(f"{surface}: {name}")


FORM_SURFACES = {
    "registration name": ("/register", "name", "anonymous"),
    "profile name": ("/events/alpha/speakers/{profile}/edit", "name", "speaker"),
    "token name": ("/account/tokens", "name", "attendee"),
    "announcement": ("/manage/events/alpha/live/announcements", "text", "organiser"),
}


@pytest.mark.parametrize("surface", FORM_SURFACES)
def test_invalid_utf8_in_forms_is_refused(surface: str, world: World, guard: StateGuard,
                                          evidence: Evidence) -> None:
    """Bytes that are not UTF-8 must not turn into U+FFFD silently and be stored."""
    path, field, who = FORM_SURFACES[surface]
    client = world.client(who)
    token = csrf_token(client, "/register") if who == "anonymous" else world.csrf(who)
    guard.take()
    for raw in (b"%FF%FE", b"Anna%C3", b"%ED%A0%80", b"%C0%AF", b"%F4%90%80%80"):
        body = (f"csrf_token={token}&email=neu%40example.org&password=long-enough-pass-1&{field}=".encode()
                + raw + b"Name")
        response = client.post(path.format(profile=world.own_profile.id), data=body,
                               content_type="application/x-www-form-urlencoded")
        assert_refused(response, 400, evidence, f"{surface}: {raw!r}")
        guard.assert_unchanged(f"{surface}: {raw!r}")
    for raw in (b"?next=%FF%FE", b"?day=%C0%AF"):
        # A str URL: werkzeug's test client takes a bytes URL as the path "/b'...'" (then 404 by routing).
        response = client.get("/events/alpha/agenda" + raw.decode())
        assert_refused(response, (400, 200), evidence, f"query {raw!r}")


def test_invalid_utf8_in_json_is_refused(world: World, guard: StateGuard, evidence: Evidence) -> None:
    guard.take()
    for body in (b'{"title": "\xff\xfe"}', b'{"title": "a\xc3"}', b'{"title": "\\ud800"}',
                 b'{"title": "x\\u0000y"}', b'{"title": "a", "title": "b\\u202e"}'):
        response = world.app.test_client().post("/api/v1/events/alpha/sessions", data=body,
                                                content_type="application/json",
                                                headers={"Authorization": f"Bearer {world.tokens['organiser']}"})
        assert_refused(response, 400, evidence, f"json {body!r}")
        guard.assert_unchanged(f"json {body!r}")


# --- payloads render as text ---------------------------------------------------------------------------------


def _publish(world: World) -> None:
    response = world.app.test_client().post("/api/v1/events/alpha/releases", json={"name": "Sicherheitstest"},
                                            headers={"Authorization": f"Bearer {world.tokens['organiser']}"})
    assert response.status_code in (200, 201), response.get_data(as_text=True)


def test_xss_and_template_payloads_render_inert(world: World, evidence: Evidence) -> None:
    organiser = {"Authorization": f"Bearer {world.tokens['organiser']}"}
    api = world.app.test_client()
    speaker = world.client("speaker")
    pages: set[str] = set()
    payloads = [*XSS, *TEMPLATE_INJECTION]
    for index, payload in enumerate(payloads):
        response = api.post("/api/v1/events/alpha/sessions", headers=organiser, json={
            "title": payload[:200], "abstract": payload, "room_id": world.room.id,
            "start": f"2099-05-04T{12 + index // 6:02d}:{(index % 6) * 10:02d}:00+00:00",
            "end": f"2099-05-04T{12 + index // 6:02d}:{(index % 6) * 10 + 5:02d}:00+00:00"})
        assert response.status_code == 201, response.get_data(as_text=True)
        pages.add(f"/events/alpha/sessions/{response.get_json()['session']['id']}")
        evidence.add("variants")
    _publish(world)
    for payload in payloads:
        response = speaker.post(f"/events/alpha/speakers/{world.own_profile.id}/edit", data={
            "csrf_token": world.csrf("speaker"), "name": payload[:120], "organisation": payload[:160],
            "position": payload[:120], "bio": payload, "links": ""})
        evidence.add("variants")
        assert response.status_code in (303, 400)
        for url in (f"/events/alpha/speakers/{world.own_profile.id}", "/events/alpha/speakers"):
            _assert_inert(world, "anonymous", url, evidence)
    for url in sorted(pages) + ["/events/alpha/agenda", "/events/alpha/", "/events/alpha/presentations"]:
        _assert_inert(world, "anonymous", url, evidence)
    for url in ("/manage/events/alpha/agenda", "/manage/events/alpha/speakers", "/manage/events/alpha/people",
                "/manage/events/alpha/presentations", "/manage/events/alpha/live"):
        _assert_inert(world, "organiser", url, evidence)
    for export in ("schedule.xml", "schedule.json", "schedule.ics"):
        response = world.app.test_client().get(f"/events/alpha/{export}")
        body = response.get_data(as_text=True)
        evidence.add("variants")
        assert response.status_code == 200 and TEMPLATE_RESULT not in body
        assert "text/html" not in response.headers["Content-Type"]


def _assert_inert(world: World, who: str, url: str, evidence: Evidence) -> None:
    response = world.client(who).get(url)
    body = response.get_data(as_text=True)
    evidence.add("variants")
    assert response.status_code == 200, (url, response.status_code)
    hits = live_payloads(body)
    if hits:
        evidence.note("wrongly_accepted", f"live payload on {url}: {hits[:2]}")
    assert hits == [], (url, hits)
    assert TEMPLATE_RESULT not in body and "test-secret-key" not in body, url


def test_chat_history_returns_payloads_as_plain_json(world: World, evidence: Evidence) -> None:
    client = _socket(world, "attendee", "lobby:alpha")
    for index, payload in enumerate(XSS):
        ack = client.emit("chat:send", {"room": "lobby:alpha", "text": payload, "client_id": f"p{index}"},
                          callback=True)
        evidence.add("variants")
        assert ack["ok"] is True and ack["message"]["text"] == payload
    client.disconnect()
    response = world.client("attendee").get("/api/v1/events/alpha/chat?room=lobby:alpha")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    texts = [m["text"] for m in response.get_json()["messages"]]
    assert set(XSS) <= set(texts)


def test_spreadsheet_exports_neutralise_formulas(world: World) -> None:
    """The only spreadsheet exports are the organisers' attendee list (CSV and XLSX) and attendance figures
    (CSV; tests/attendance/test_routes.py opens them): a cell that starts with = + - @ tab or CR gets a leading
    apostrophe, so no spreadsheet runs it; XLSX cells are all text cells. A new export fails this test."""
    import csv
    import io
    import tempfile

    from openpyxl import load_workbook

    from conference import create_app

    app = create_app({"INSTANCE_PATH": tempfile.mkdtemp(prefix="csv-"), "SECRET_KEY": "x", "TESTING": True,
                      "DATABASE_URL": "sqlite://", "ASYNC_MODE": "threading"})
    rules = [r.rule for r in app.url_map.iter_rules() if "csv" in r.rule.lower() or "export" in r.endpoint.lower()]
    assert sorted(rules) == ["/events/<slug>/schedule.ics", "/events/<slug>/schedule.json",
                             "/events/<slug>/schedule.xml", "/manage/events/<slug>/attendance/presence.csv",
                             "/manage/events/<slug>/attendance/sessions.csv", "/manage/events/<slug>/attendees.csv",
                             "/manage/events/<slug>/attendees.xlsx"]
    payloads = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1"]
    for user, payload in zip(world.users.values(), payloads, strict=False):
        user.name = payload
    db.session.commit()
    client = world.client("organiser")
    body = client.get(f"/manage/events/{world.event.slug}/attendees.csv").data.decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert not [cell for cell in cells if cell and cell[0] in "=+-@\t\r"]
    assert sum(1 for cell in cells if cell.startswith("'")) >= 1
    sheet = load_workbook(io.BytesIO(client.get(f"/manage/events/{world.event.slug}/attendees.xlsx").data)).active
    values = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert all(cell.data_type == "s" and str(cell.value)[:1] not in "=+-@\t\r" for cell in values)
    for url in ("/events/alpha/schedule.ics", "/events/alpha/schedule.json", "/events/alpha/schedule.xml",
                "/events/alpha/presentations/archive.zip"):
        response = world.app.test_client().get(url)
        response.close()
        assert "csv" not in response.headers.get("Content-Type", "")
