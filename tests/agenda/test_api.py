"""The agenda JSON API: the published list, organiser writes with the same rules, bad input, permissions."""

from __future__ import annotations

import re

import pytest

from conference.agenda.models import ConferenceSession, TimetableSlot
from conference.core.permissions import Role
from conference.extensions import db
from tests.fixtures.accounts import api_token_for

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


@pytest.fixture
def organiser_headers(agenda_world, person) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token_for(person(agenda_world.event, Role.ORGANISER))}"}


def _counts() -> tuple[int, int]:
    return db.session.query(ConferenceSession).count(), db.session.query(TimetableSlot).count()


def test_sessions_list_shape_of_published_release(client, agenda_world, create_agenda_session, publish) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Keynote", room=w.rooms[0], start="09:00", end="09:45",
                                 speakers=[w.speakers[0]], track=w.track, language="en")
    publish(w.event, "1.0")
    body = client.get("/api/v1/events/agenda-test/sessions").get_json()
    assert body["version"] == "1.0"
    [item] = body["sessions"]
    assert {"id", "title", "kind", "start", "end", "room", "track", "language", "speakers",
            "chat_room"} <= set(item)
    assert item["id"] == talk.id
    assert item["start"] == "2027-03-18T09:00:00+01:00"
    assert item["end"] == "2027-03-18T09:45:00+01:00"
    assert ISO_WITH_OFFSET.match(item["start"])
    assert (item["room"], item["track"], item["language"], item["kind"]) == ("Hauptbühne", "Wirtschaft", "en",
                                                                             "talk")
    assert item["speakers"] == [{"id": w.speakers[0].id, "name": "Anna Alt", "role": "speaker"}]
    assert item["chat_room"] == f"session:{talk.id}"


def test_sessions_list_shows_only_latest_release(client, agenda_world, create_agenda_session, publish) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Alt", room=w.rooms[0])
    publish(w.event, "1.0")
    create_agenda_session(w.event, "Unveröffentlicht", room=w.rooms[1])
    titles = [s["title"] for s in client.get("/api/v1/events/agenda-test/sessions").get_json()["sessions"]]
    assert titles == ["Alt"]


def test_sessions_list_before_first_release_is_empty(client, agenda_world, create_agenda_session) -> None:
    create_agenda_session(agenda_world.event, "Entwurf", room=agenda_world.rooms[0])
    assert client.get("/api/v1/events/agenda-test/sessions").get_json() == {"version": None, "sessions": []}


@pytest.mark.parametrize(("role", "status"), [(None, 401), (Role.ATTENDEE, 403), (Role.SPEAKER, 403),
                                              (Role.MODERATOR, 403)])
def test_working_agenda_needs_organiser(client, agenda_world, person, role, status) -> None:
    headers = {}
    if role is not None:
        headers = {"Authorization": f"Bearer {api_token_for(person(agenda_world.event, role))}"}
    response = client.get("/api/v1/events/agenda-test/sessions?state=working", headers=headers)
    assert response.status_code == status
    assert response.get_json()["field"] == "state"


def test_create_session_scheduled(client, agenda_world, organiser_headers) -> None:
    w = agenda_world
    response = client.post("/api/v1/events/agenda-test/sessions", headers=organiser_headers, json={
        "title": "Neu", "kind": "workshop", "language": "en", "track_id": w.track.id,
        "speakers": [w.speakers[0].id, {"id": w.speakers[1].id, "role": "moderator"}],
        "room_id": w.rooms[1].id, "start": "2027-03-18T13:00", "end": "2027-03-18T14:30:00+01:00"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["warnings"] == []
    session = body["session"]
    assert (session["title"], session["room"], session["start"], session["end"]) == (
        "Neu", "Raum A", "2027-03-18T13:00:00+01:00", "2027-03-18T14:30:00+01:00")
    assert [(s["name"], s["role"]) for s in session["speakers"]] == [("Anna Alt", "speaker"),
                                                                     ("Bernd Berg", "moderator")]
    assert _counts() == (1, 1)


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"kind": "talk"}, "title", 400),
    ({"title": 42}, "title", 400),
    ({"title": "x" * 201}, "title", 400),
    ({"title": "ok", "abstract": "x" * 20_001}, "abstract", 400),
    ({"title": "ok", "kind": "party"}, "kind", 400),
    ({"title": "ok", "language": "fr"}, "language", 400),
    ({"title": "ok", "track_id": 9999}, "track_id", 422),
    ({"title": "ok", "track_id": "1"}, "track_id", 400),
    ({"title": "ok", "speakers": [9999]}, "speakers", 422),
    ({"title": "ok", "speakers": "1"}, "speakers", 400),
    ({"title": "ok", "speakers": [{"id": 1, "role": "boss"}]}, "speakers", 400),
    ({"title": "ok", "room_id": 9999, "start": "2027-03-18T09:00", "end": "2027-03-18T10:00"}, "room_id", 422),
    ({"title": "ok", "room_id": True, "start": "2027-03-18T09:00", "end": "2027-03-18T10:00"}, "room_id", 400),
    ({"title": "ok", "room_id": 1, "start": "morgen", "end": "2027-03-18T10:00"}, "start", 400),
    ({"title": "ok", "room_id": 1, "start": "2027-03-18T09:00"}, "end", 400),
    ({"title": "ok", "room_id": 1, "start": "2027-03-18T10:00", "end": "2027-03-18T09:00"}, "end", 422),
    ({"title": "ok", "room_id": 1, "start": "2027-03-18T10:00", "end": "2027-03-18T10:00"}, "end", 422),
    ({"title": "ok", "room_id": 1, "start": "2027-03-19T10:00", "end": "2027-03-19T11:00"}, "start", 422),
    ({"title": "ok", "colour": "red"}, "colour", 400),
])
def test_create_session_bad_input_names_field_and_changes_nothing(client, agenda_world, organiser_headers, body,
                                                                  field, status) -> None:
    """400: the wrong shape; 422: well-formed, but an id names nothing in the event or the times break a rule."""
    response = client.post("/api/v1/events/agenda-test/sessions", headers=organiser_headers, json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["field"] == field
    assert response.get_json()["ok"] is False
    assert _counts() == (0, 0)


@pytest.mark.parametrize(("data", "content_type"), [("{not json", "application/json"), ("[1, 2]", "application/json"),
                                                    ("title=x", "application/x-www-form-urlencoded")])
def test_create_session_malformed_body_refused(client, agenda_world, organiser_headers, data, content_type) -> None:
    response = client.post("/api/v1/events/agenda-test/sessions", headers=organiser_headers, data=data,
                           content_type=content_type)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert _counts() == (0, 0)


def test_create_session_room_overlap_is_409(client, agenda_world, organiser_headers, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Belegt", room=w.rooms[0], start="09:00", end="10:00")
    response = client.post("/api/v1/events/agenda-test/sessions", headers=organiser_headers, json={
        "title": "Kollision", "room_id": w.rooms[0].id, "start": "2027-03-18T09:30", "end": "2027-03-18T10:30"})
    assert response.status_code == 409
    assert (response.get_json()["error"], response.get_json()["field"]) == ("room_overlap", "room_id")
    assert _counts() == (1, 1)


def test_create_session_back_to_back_returns_warning(client, agenda_world, organiser_headers,
                                                     create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Erst", room=w.rooms[0], start="09:00", end="10:00", speakers=[w.speakers[0]])
    response = client.post("/api/v1/events/agenda-test/sessions", headers=organiser_headers, json={
        "title": "Dann", "speakers": [w.speakers[0].id], "room_id": w.rooms[1].id,
        "start": "2027-03-18T10:00", "end": "2027-03-18T11:00"})
    assert response.status_code == 201
    assert [w_["code"] for w_ in response.get_json()["warnings"]] == ["speaker_back_to_back"]


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/api/v1/events/agenda-test/sessions"),
    ("patch", "/api/v1/events/agenda-test/sessions/{id}"),
    ("delete", "/api/v1/events/agenda-test/sessions/{id}"),
    ("post", "/api/v1/events/agenda-test/sessions/{id}/slots"),
    ("patch", "/api/v1/events/agenda-test/slots/{slot}"),
    ("delete", "/api/v1/events/agenda-test/slots/{slot}"),
    ("post", "/api/v1/events/agenda-test/releases"),
])
@pytest.mark.parametrize(("role", "status"), [(None, 401), (Role.ATTENDEE, 403), (Role.SPEAKER, 403),
                                              (Role.MODERATOR, 403)])
def test_writes_refused_for_non_organisers(client, agenda_world, person, create_agenda_session, method, path,
                                           role, status) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    # Anonymous: an API client whose token is unknown (without any credentials the core CSRF check answers
    # 400 first, since it runs before authentication).
    headers = {"Authorization": "Bearer cft_unknown-token"}
    if role is not None:
        headers = {"Authorization": f"Bearer {api_token_for(person(w.event, role))}"}
    url = path.format(id=talk.id, slot=talk.slots[0].id)
    response = getattr(client, method)(url, headers=headers, json={"title": "Übernahme", "name": "x",
                                                                    "room_id": w.rooms[1].id})
    assert response.status_code == status
    assert _counts() == (1, 1)
    assert db.session.get(ConferenceSession, talk.id).title == "Vortrag"


def test_cookie_write_without_csrf_refused(client, agenda_world, person) -> None:
    from tests.fixtures.accounts import login

    organiser = person(agenda_world.event, Role.ORGANISER, email="orga@example.org")
    login(client, organiser.email)
    response = client.post("/api/v1/events/agenda-test/sessions", json={"title": "Ohne Token"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "csrf_failed"
    assert _counts() == (0, 0)


def test_patch_session_moves_only_slot_and_cancels(client, agenda_world, organiser_headers,
                                                   create_agenda_session) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0], start="09:00", end="10:00")
    response = client.patch(f"/api/v1/events/agenda-test/sessions/{talk.id}", headers=organiser_headers,
                            json={"room_id": w.rooms[1].id, "start": "2027-03-18T11:00:00+01:00",
                                  "end": "2027-03-18T12:00:00+01:00", "title": "Verschoben", "cancelled": True})
    assert response.status_code == 200
    session = response.get_json()["session"]
    assert (session["title"], session["room"], session["start"], session["cancelled"]) == (
        "Verschoben", "Raum A", "2027-03-18T11:00:00+01:00", True)


def test_patch_session_conflict_changes_nothing(client, agenda_world, organiser_headers,
                                                create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Belegt", room=w.rooms[1], start="11:00", end="12:00")
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0], start="09:00", end="10:00")
    response = client.patch(f"/api/v1/events/agenda-test/sessions/{talk.id}", headers=organiser_headers,
                            json={"title": "Neuer Titel", "room_id": w.rooms[1].id,
                                  "start": "2027-03-18T11:30", "end": "2027-03-18T12:30"})
    assert response.status_code == 409
    db.session.expire_all()
    stored = db.session.get(ConferenceSession, talk.id)
    assert (stored.title, stored.slots[0].room_id) == ("Vortrag", w.rooms[0].id)


def test_slot_endpoints_move_and_delete(client, agenda_world, organiser_headers, create_agenda_session) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0], start="09:00", end="10:00")
    slot_id = talk.slots[0].id
    moved = client.patch(f"/api/v1/events/agenda-test/slots/{slot_id}", headers=organiser_headers,
                         json={"start": "2027-03-18T09:30", "end": "2027-03-18T10:30"})
    assert moved.status_code == 200
    assert moved.get_json()["session"]["slots"][0]["start"] == "2027-03-18T09:30:00+01:00"
    assert client.delete(f"/api/v1/events/agenda-test/slots/{slot_id}", headers=organiser_headers).status_code == 204
    assert _counts() == (1, 0)
    again = client.post(f"/api/v1/events/agenda-test/sessions/{talk.id}/slots", headers=organiser_headers,
                        json={"room_id": w.rooms[1].id, "start": "2027-03-18T14:00", "end": "2027-03-18T15:00"})
    assert again.status_code == 201
    assert again.get_json()["session"]["room"] == "Raum A"


def test_slot_of_other_event_is_404(client, agenda_world, organiser_headers, create_event, create_room,
                                    create_agenda_session) -> None:
    other = create_event("other-event")
    foreign = create_agenda_session(other, "Fremd", room=create_room(other, "Fremdraum"))
    response = client.delete(f"/api/v1/events/agenda-test/slots/{foreign.slots[0].id}", headers=organiser_headers)
    assert response.status_code == 404
    response = client.patch(f"/api/v1/events/agenda-test/sessions/{foreign.id}", headers=organiser_headers,
                            json={"title": "x"})
    assert response.status_code == 404
    assert _counts() == (1, 1)


def test_delete_session(client, agenda_world, organiser_headers, create_agenda_session) -> None:
    talk = create_agenda_session(agenda_world.event, "Weg", room=agenda_world.rooms[0])
    assert client.delete(f"/api/v1/events/agenda-test/sessions/{talk.id}", headers=organiser_headers
                         ).status_code == 204
    assert _counts() == (0, 0)


def test_publish_release_via_api(client, agenda_world, organiser_headers, create_agenda_session) -> None:
    create_agenda_session(agenda_world.event, "Vortrag", room=agenda_world.rooms[0])
    response = client.post("/api/v1/events/agenda-test/releases", headers=organiser_headers, json={"name": "1.0"})
    assert response.status_code == 201
    assert response.get_json()["version"] == "1.0"
    assert [c["title"] for c in response.get_json()["changes"]["added"]] == ["Vortrag"]
    again = client.post("/api/v1/events/agenda-test/releases", headers=organiser_headers, json={"name": "1.1"})
    assert (again.status_code, again.get_json()["error"]) == (409, "no_changes")
    listing = client.get("/api/v1/events/agenda-test/releases").get_json()
    assert [r["version"] for r in listing["releases"]] == ["1.0"]


def test_star_api_for_logged_in_only(client, agenda_world, person, create_agenda_session, publish) -> None:
    talk = create_agenda_session(agenda_world.event, "Vortrag", room=agenda_world.rooms[0])
    publish(agenda_world.event)
    assert client.put(f"/api/v1/events/agenda-test/sessions/{talk.id}/star",
                      headers={"Authorization": "Bearer cft_unknown"}).status_code == 401
    headers = {"Authorization": f"Bearer {api_token_for(person(agenda_world.event, Role.ATTENDEE))}"}
    assert client.put(f"/api/v1/events/agenda-test/sessions/{talk.id}/star", headers=headers).status_code == 204
    assert client.put(f"/api/v1/events/agenda-test/sessions/{talk.id}/star", headers=headers).status_code == 204
    assert client.get("/api/v1/events/agenda-test/starred", headers=headers).get_json() == {"sessions": [talk.id]}
    assert client.delete(f"/api/v1/events/agenda-test/sessions/{talk.id}/star", headers=headers).status_code == 204
    assert client.get("/api/v1/events/agenda-test/starred", headers=headers).get_json() == {"sessions": []}
