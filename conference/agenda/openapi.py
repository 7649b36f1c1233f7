"""The OpenAPI description of the agenda, event, account and meta routes (`conference.core.openapi` joins it
with the other domains' parts and serves the whole at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from conference.agenda.fields import ABSTRACT_MAX, MAX_SPEAKERS, RELEASE_NAME_MAX, TITLE_MAX
from conference.core.openapi import (
    BEARER,
    ID,
    ISO_TIME,
    NULLABLE_STRING,
    SLUG,
    TIME_INPUT,
    body,
    errors,
    json_content,
    path_id,
    ref,
    register_paths,
    text,
)

KINDS = ["keynote", "talk", "panel", "workshop", "break", "networking"]
LANGUAGES = ["de", "en"]
ROLES = ["speaker", "moderator"]
SESSION_ID, SLOT_ID, TOKEN_ID = path_id("session_id"), path_id("slot_id"), path_id("token_id")
STATE = {"name": "state", "in": "query", "required": False,
         "description": "`published` (default) or `working` (organisers only: 401 without a login, 403 for others)",
         "schema": {"type": "string", "enum": ["published", "working"]}}
_SLOT_TOGETHER = {"room_id": ["start", "end"], "start": ["room_id", "end"], "end": ["room_id", "start"]}

SCHEMAS: dict[str, Any] = {
    "Event": {"type": "object", "required": ["slug", "title", "start", "end", "timezone", "language"],
              "properties": {"slug": {"type": "string"}, "title": {"type": "string"},
                             "description": {"type": "string"}, "start": {"type": "string", "format": "date"},
                             "end": {"type": "string", "format": "date"}, "timezone": {"type": "string"},
                             "language": {"type": "string"},
                             "registration": {"type": "string", "enum": ["open", "code", "closed"]},
                             "links": {"type": "string", "enum": ["public", "members"],
                                       "description": "who sees stream and meeting links on session pages"},
                             "published": {"type": "boolean"}}},
    "EventList": {"type": "object", "required": ["events"],
                  "properties": {"events": {"type": "array", "items": ref("Event")}}},
    "TokenRequest": {"type": "object", "required": ["email", "password"], "additionalProperties": False,
                     "properties": {"email": text(254), "password": text(1024),
                                    "name": {"anyOf": [text(80), {"type": "null"}],
                                             "description": "a label for the token (default `api`)"}}},
    "Token": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}},
    "TokenList": {"type": "object", "required": ["tokens"], "properties": {"tokens": {"type": "array", "items": {
        "type": "object", "required": ["id", "name", "prefix", "created_at", "revoked"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "prefix": {"type": "string"},
                       "created_at": {"type": "string"}, "revoked": {"type": "boolean"}}}}}},
    "Me": {"type": "object", "required": ["id", "name", "email", "roles"],
           "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"},
                          "roles": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Health": {"type": "object", "required": ["status", "database", "queue", "version"],
               "properties": {"status": {"enum": ["ok", "degraded", "down"]}, "database": {"type": "string"},
                              "queue": {"type": "string"}, "version": {"type": "string"}}},
    "Speaker": {"type": "object", "required": ["id", "name", "role"], "additionalProperties": False,
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "role": {"enum": ROLES}}},
    "Slot": {"type": "object", "required": ["id", "room_id", "room", "start", "end"], "additionalProperties": False,
             "properties": {"id": {"type": "integer"}, "room_id": {"type": "integer"}, "room": {"type": "string"},
                            "start": ISO_TIME, "end": ISO_TIME}},
    "Session": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "title", "kind", "start", "end", "room", "track", "language", "speakers", "chat_room"],
        "properties": {
            "id": {"type": "integer"}, "guid": {"type": "string", "format": "uuid"}, "title": {"type": "string"},
            "kind": {"enum": KINDS}, "start": {"oneOf": [ISO_TIME, {"type": "null"}]},
            "end": {"oneOf": [ISO_TIME, {"type": "null"}]},
            "room": {**NULLABLE_STRING, "description": "null when unscheduled or in several rooms (see slots)"},
            "track": NULLABLE_STRING, "language": {"enum": LANGUAGES},
            "speakers": {"type": "array", "items": ref("Speaker")},
            "chat_room": {"type": "string", "pattern": r"^session:\d+$"},
            "cancelled": {"type": "boolean"}, "abstract": {"type": "string", "description": "Markdown"},
            "slots": {"type": "array", "items": ref("Slot")}}},
    "SessionList": {"type": "object", "required": ["sessions", "version"], "properties": {
        "version": {**NULLABLE_STRING, "description": "name of the release shown (null: none yet)"},
        "sessions": {"type": "array", "items": ref("Session")}}},
    "Warning": {"type": "object", "required": ["code", "message", "severity"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "severity": {"const": "warning"}, "field": {"type": "string"},
                               "session_id": {"type": "integer"}}},
    "SessionResult": {"type": "object", "required": ["session", "warnings"], "properties": {
        "session": ref("Session"), "warnings": {"type": "array", "items": ref("Warning")}}},
    "SpeakerRef": {"oneOf": [ID, {
        "type": "object", "required": ["id"], "additionalProperties": False,
        "properties": {"id": ID, "role": {"enum": ROLES}}}],
        "description": "a speaker id of the event, or {id, role}; each speaker once (else 422)"},
    "SessionCreate": {
        "type": "object", "additionalProperties": False, "required": ["title"], "dependentRequired": _SLOT_TOGETHER,
        "description": "With room_id, start and end (all three) the session is also scheduled.",
        "properties": {
            "title": text(TITLE_MAX, filled=True),
            "abstract": {"anyOf": [text(ABSTRACT_MAX), {"type": "null"}]},
            "kind": {"enum": [*KINDS, None], "description": "default talk"},
            "language": {"enum": [*LANGUAGES, None], "description": "default: the event's language"},
            "track_id": {"anyOf": [ID, {"type": "null"}]},
            "speakers": {"anyOf": [{"type": "array", "items": ref("SpeakerRef"), "maxItems": MAX_SPEAKERS,
                                    "uniqueItems": True}, {"type": "null"}]},
            "room_id": ID, "start": TIME_INPUT, "end": TIME_INPUT}},
    "SessionPatch": {
        "type": "object", "additionalProperties": False,
        "description": "Each field optional. room_id/start/end move the session's only slot (409 with several); "
                       "an unscheduled session needs all three (else 422 `not_scheduled`).",
        "properties": {
            "title": text(TITLE_MAX, filled=True), "abstract": text(ABSTRACT_MAX),
            "kind": {"enum": KINDS}, "language": {"enum": LANGUAGES},
            "track_id": {"anyOf": [ID, {"type": "null"}]},
            "speakers": {"type": "array", "items": ref("SpeakerRef"), "maxItems": MAX_SPEAKERS,
                         "uniqueItems": True},
            "cancelled": {"type": "boolean"}, "room_id": ID, "start": TIME_INPUT, "end": TIME_INPUT}},
    "SlotCreate": {"type": "object", "additionalProperties": False, "required": ["room_id", "start", "end"],
                   "properties": {"room_id": ID, "start": TIME_INPUT, "end": TIME_INPUT}},
    "SlotPatch": {"type": "object", "additionalProperties": False,
                  "properties": {"room_id": ID, "start": TIME_INPUT, "end": TIME_INPUT}},
    "ReleaseCreate": {"type": "object", "required": ["name"], "additionalProperties": False,
                      "properties": {"name": text(RELEASE_NAME_MAX, filled=True)}},
    "Release": {"type": "object", "required": ["version", "sequence", "published_at", "changes"], "properties": {
        "version": {"type": "string"}, "sequence": {"type": "integer"}, "published_at": ISO_TIME,
        "changes": {"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object", "required": ["id", "title"],
            "properties": {"id": {"type": "integer"}, "title": {"type": "string"}}}}}}},
    "ReleaseList": {"type": "object", "required": ["releases"],
                    "properties": {"releases": {"type": "array", "items": ref("Release")}}},
    "Starred": {"type": "object", "required": ["sessions"],
                "properties": {"sessions": {"type": "array", "items": {"type": "integer"}}}},
}

_WRITE = (400, 401, 403, 404, 409, 413, 422)  # a JSON body, organisers only
_ACT = (400, 401, 403, 404)  # no body; 400: a cookie login without the CSRF token


def _op(summary: str, tag: str, responses: dict[str, Any], *, parameters: list[Any] | None = None,
        secured: bool = False, request: str | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if secured:
        operation["security"] = BEARER
    if request:
        operation["requestBody"] = body(request)
    return operation


def _done(description: str) -> dict[str, Any]:
    return {"204": {"description": description}}


E = "/api/v1/events/{slug}"
PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {"get": _op("This description", "meta", {"200": json_content(
        {"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.1 document")})},
    "/api/v1/docs": {"get": _op("An interactive page listing these operations, with a form to try each", "meta", {
        "200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}})},
    "/healthz": {"get": _op("Health of database and queue", "meta", {
        "200": json_content(ref("Health"), "Up (maybe degraded)"), "503": json_content(ref("Health"), "Down")})},
    "/api/v1/auth/token": {"post": _op(
        "Issue an API token for e-mail and password (20 per account and 300 per address an hour)", "auth",
        {"201": json_content(ref("Token"), "The token (shown once)"), **errors(400, 401, 413, 429)},
        request="TokenRequest")},
    "/api/v1/auth/tokens": {"get": _op("My API tokens", "auth", {"200": json_content(ref("TokenList"), "Tokens"),
                                                                   **errors(401, 403)}, secured=True)},
    "/api/v1/auth/tokens/{token_id}": {"delete": _op("Revoke one of my tokens (another's token: 404)", "auth",
                                                     {**_done("Revoked"), **errors(*_ACT)},
                                                     parameters=[TOKEN_ID], secured=True)},
    "/api/v1/me": {"get": _op("Who am I", "auth", {"200": json_content(ref("Me"), "The caller"), **errors(401, 403)},
                              secured=True)},
    "/api/v1/events": {"get": _op("Events visible to the caller", "events",
                                  {"200": json_content(ref("EventList"), "Events")})},
    E: {"get": _op("One event", "events", {"200": json_content(ref("Event"), "The event"), **errors(404)},
                   parameters=[SLUG])},
    f"{E}/sessions": {
        "get": _op("Sessions of the latest release (or the working agenda)", "agenda",
                   {"200": json_content(ref("SessionList"), "Sessions"), **errors(400, 401, 403, 404)},
                   parameters=[SLUG, STATE]),
        "post": _op("Create a session, optionally scheduled (room_id, start, end)", "agenda",
                    {"201": json_content(ref("SessionResult"), "Created"), **errors(*_WRITE)},
                    parameters=[SLUG], secured=True, request="SessionCreate")},
    f"{E}/sessions/{{session_id}}": {
        "get": _op("One session", "agenda", {"200": json_content(ref("Session"), "The session"),
                                             **errors(400, 401, 403, 404)}, parameters=[SLUG, SESSION_ID, STATE]),
        "patch": _op("Change a session (content, cancelled, or its only slot)", "agenda",
                     {"200": json_content(ref("SessionResult"), "Changed"), **errors(*_WRITE)},
                     parameters=[SLUG, SESSION_ID], secured=True, request="SessionPatch"),
        "delete": _op("Delete a session", "agenda", {**_done("Deleted"), **errors(*_ACT)},
                      parameters=[SLUG, SESSION_ID], secured=True)},
    f"{E}/sessions/{{session_id}}/slots": {"post": _op(
        "Add a slot (only a break may have several)", "agenda",
        {"201": json_content(ref("SessionResult"), "Scheduled"), **errors(*_WRITE)},
        parameters=[SLUG, SESSION_ID], secured=True, request="SlotCreate")},
    f"{E}/sessions/{{session_id}}/copy-break": {"post": _op(
        "Copy a break to every room (409 for a session that is no break, or not scheduled)", "agenda",
        {"200": json_content(ref("SessionResult"), "Copied"), **errors(*_ACT, 409)},
        parameters=[SLUG, SESSION_ID], secured=True)},
    f"{E}/slots/{{slot_id}}": {
        "patch": _op("Move a slot (room and/or time)", "agenda",
                     {"200": json_content(ref("SessionResult"), "Moved"), **errors(*_WRITE)},
                     parameters=[SLUG, SLOT_ID], secured=True, request="SlotPatch"),
        "delete": _op("Remove a slot", "agenda", {**_done("Removed"), **errors(*_ACT)},
                      parameters=[SLUG, SLOT_ID], secured=True)},
    f"{E}/agenda/version": {"get": _op(
        "The latest release's number (null before the first); ETag, 304 when unchanged", "agenda",
        {"200": json_content({"type": "object", "required": ["release"],
                              "properties": {"release": {"type": ["integer", "null"]}}}, "The release"),
         "304": {"description": "Unchanged since the ETag sent in If-None-Match"}, **errors(404)},
        parameters=[SLUG])},
    f"{E}/releases": {
        "get": _op("Published releases, newest first", "agenda",
                   {"200": json_content(ref("ReleaseList"), "Releases"), **errors(404)}, parameters=[SLUG]),
        "post": _op("Publish the working agenda as a named release", "agenda",
                    {"201": json_content(ref("Release"), "Published"), **errors(400, 401, 403, 404, 409, 413)},
                    parameters=[SLUG], secured=True, request="ReleaseCreate")},
    f"{E}/starred": {"get": _op("Ids of the released sessions in my agenda", "agenda",
                                {"200": json_content(ref("Starred"), "Starred sessions"), **errors(401, 403, 404)},
                                parameters=[SLUG], secured=True)},
    f"{E}/sessions/{{session_id}}/star": {
        "put": _op("Add to my agenda", "agenda", {**_done("Starred"), **errors(*_ACT)},
                   parameters=[SLUG, SESSION_ID], secured=True),
        "delete": _op("Remove from my agenda", "agenda", {**_done("Unstarred"), **errors(*_ACT)},
                      parameters=[SLUG, SESSION_ID], secured=True)},
}


def register(app: Flask) -> None:
    register_paths(app, PATHS, SCHEMAS)
