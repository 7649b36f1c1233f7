"""The OpenAPI description: served, covers every JSON endpoint, and matches real responses."""

from __future__ import annotations

import re

import jsonschema
import pytest

from conference.core.permissions import Role
from tests.fixtures.accounts import PASSWORD, api_token_for


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


def _routes(app) -> set[tuple[str, str]]:
    """Every (path, method) the application answers under /api/v1 (and /healthz), in OpenAPI path syntax."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule == "/healthz"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def _documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item
            if method in {"get", "put", "post", "patch", "delete"}}


def test_openapi_covers_every_api_route_and_nothing_else(app, client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    routes, documented = _routes(app), _documented(document)
    assert not routes - documented, f"routes the document lacks: {sorted(routes - documented)}"
    assert not documented - routes, f"documented operations without a route: {sorted(documented - routes)}"
    print(f"operations documented / existing: {len(documented)} / {len(routes)}")
    assert len(routes) >= 30
    for path in ("/api/v1/events/{slug}/chat", "/api/v1/sessions/{session_id}/presentations/{presentation_id}"):
        assert path in document["paths"]


def test_openapi_every_id_parameter_bounded_and_every_operation_answers_documented(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, path
            codes = set(operation["responses"])
            if operation.get("security"):
                assert "401" in codes, f"{method} {path} needs a login but does not document 401"
            if "requestBody" in operation and method != "get":
                assert {"400", "413"} <= codes, f"{method} {path} takes a body: 400 and 413"


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
