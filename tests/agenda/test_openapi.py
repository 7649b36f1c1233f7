"""The OpenAPI description: served, covers every JSON endpoint, and matches real responses."""

from __future__ import annotations

import re

import jsonschema
import pytest

from conference.core.permissions import Role
from tests.fixtures.accounts import PASSWORD, api_token_for

# The domains whose endpoints this document describes; presentations and live add theirs with
# `conference.agenda.openapi.register_paths` and then join this set.
DESCRIBED_BLUEPRINTS = {"auth", "events", "agenda", "health"}


def _schema_for(document: dict, path: str, method: str, status: int) -> dict:
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def _check(document: dict, path: str, method: str, response) -> None:
    schema = _schema_for(document, path, method, response.status_code)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(response.get_json())


def test_openapi_document_served(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})


def test_openapi_covers_every_api_route(app, client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    rules = [rule for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/api/") and rule.endpoint.split(".")[0] in DESCRIBED_BLUEPRINTS]
    assert len(rules) >= 20
    for rule in rules:
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        assert path in document["paths"], f"{path} is not described"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], f"{method} {path} is not described"


def test_real_responses_match_openapi(client, agenda_world, person, create_agenda_session, publish) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0], speakers=[w.speakers[0]], track=w.track)
    pause = create_agenda_session(w.event, "Pause", room=w.rooms[0], start="10:00", end="10:15", kind="break")
    publish(w.event, "1.0")
    organiser = person(w.event, Role.ORGANISER, email="orga@example.org")
    auth = {"Authorization": f"Bearer {api_token_for(organiser)}"}
    e = "/api/v1/events/{slug}"

    _check(document, "/api/v1/events", "get", client.get("/api/v1/events"))
    _check(document, e, "get", client.get("/api/v1/events/agenda-test"))
    _check(document, e, "get", client.get("/api/v1/events/nope"))
    _check(document, "/api/v1/me", "get", client.get("/api/v1/me", headers=auth))
    _check(document, "/api/v1/me", "get", client.get("/api/v1/me"))
    _check(document, "/api/v1/auth/tokens", "get", client.get("/api/v1/auth/tokens", headers=auth))
    _check(document, "/api/v1/auth/token", "post", client.post("/api/v1/auth/token", json={
        "email": "orga@example.org", "password": PASSWORD}))
    _check(document, "/api/v1/auth/token", "post", client.post("/api/v1/auth/token", json={"email": 1}))
    _check(document, "/healthz", "get", client.get("/healthz"))
    _check(document, f"{e}/sessions", "get", client.get("/api/v1/events/agenda-test/sessions"))
    _check(document, f"{e}/sessions", "get", client.get("/api/v1/events/agenda-test/sessions?state=working",
                                                        headers=auth))
    _check(document, f"{e}/sessions/{{session_id}}", "get",
           client.get(f"/api/v1/events/agenda-test/sessions/{talk.id}"))
    created = client.post("/api/v1/events/agenda-test/sessions", headers=auth, json={
        "title": "Neu", "speakers": [w.speakers[0].id], "room_id": w.rooms[1].id, "start": "2027-03-18T10:00",
        "end": "2027-03-18T11:00"})
    assert created.status_code == 201
    _check(document, f"{e}/sessions", "post", created)
    new_id = created.get_json()["session"]["id"]
    _check(document, f"{e}/sessions", "post", client.post("/api/v1/events/agenda-test/sessions", headers=auth,
                                                          json={"title": ""}))
    _check(document, f"{e}/sessions/{{session_id}}", "patch", client.patch(
        f"/api/v1/events/agenda-test/sessions/{new_id}", headers=auth, json={"title": "Umbenannt"}))
    _check(document, f"{e}/sessions/{{session_id}}", "patch", client.patch(
        f"/api/v1/events/agenda-test/sessions/{new_id}", headers=auth,
        json={"room_id": w.rooms[0].id, "start": "2027-03-18T09:00", "end": "2027-03-18T09:30"}))
    _check(document, f"{e}/sessions/{{session_id}}/copy-break", "post", client.post(
        f"/api/v1/events/agenda-test/sessions/{pause.id}/copy-break", headers=auth))
    slot_id = talk.slots[0].id
    _check(document, f"{e}/slots/{{slot_id}}", "patch", client.patch(
        f"/api/v1/events/agenda-test/slots/{slot_id}", headers=auth, json={"end": "2027-03-18T09:50"}))
    _check(document, f"{e}/releases", "post", client.post("/api/v1/events/agenda-test/releases", headers=auth,
                                                          json={"name": "1.1"}))
    _check(document, f"{e}/releases", "get", client.get("/api/v1/events/agenda-test/releases"))
    assert client.put(f"/api/v1/events/agenda-test/sessions/{talk.id}/star", headers=auth).status_code == 204
    _check(document, f"{e}/starred", "get", client.get("/api/v1/events/agenda-test/starred", headers=auth))
    _check(document, f"{e}/sessions/{{session_id}}", "delete", client.delete(
        f"/api/v1/events/agenda-test/sessions/{new_id}",
        headers={"Authorization": f"Bearer {api_token_for(person(w.event, Role.ATTENDEE))}"}))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_error_schema_documented(client, status) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["components"]["schemas"]["Error"]["required"] == ["ok", "error", "message"]
    described = [op["responses"] for ops in document["paths"].values() for op in ops.values()
                 if str(status) in op["responses"]]
    assert described
