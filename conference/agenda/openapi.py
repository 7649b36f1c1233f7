"""The OpenAPI 3.1 description of the JSON API, served at /api/v1/openapi.json.

Schemas are plain JSON Schema (2020-12), so tests validate real responses against them with `jsonschema`.
Other domains add their paths with `register_paths(app, paths, schemas)` when they register.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask, current_app

EXTENSION_KEY = "conference_openapi"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {400: "Invalid input; `field` names the offending field", 401: "Not logged in / no token",
             403: "Not allowed", 404: "Not found", 409: "Conflict (e.g. a room or speaker is already taken)",
             429: "Too many attempts"}
    return {str(code): _json(_ref("Error"), texts[code]) for code in codes}


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SLOT_ID = {"name": "slot_id", "in": "path", "required": True, "schema": {"type": "integer"}}
TOKEN_ID = {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}
STATE = {"name": "state", "in": "query", "required": False,
         "description": "`published` (default) or `working` (organisers only)",
         "schema": {"type": "string", "enum": ["published", "working"]}}
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"cookieAuth": []}]
NULLABLE_STRING = {"type": ["string", "null"]}
ISO_TIME = {"type": "string", "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$"}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["ok", "error", "message"], "properties": {
        "ok": {"const": False}, "error": {"type": "string"}, "message": {"type": "string"},
        "field": {"type": "string"}}},
    "Event": {"type": "object", "required": ["slug", "title", "start", "end", "timezone", "language"],
              "properties": {"slug": {"type": "string"}, "title": {"type": "string"},
                             "description": {"type": "string"}, "start": {"type": "string", "format": "date"},
                             "end": {"type": "string", "format": "date"}, "timezone": {"type": "string"},
                             "language": {"type": "string"}, "registration": {"type": "string"},
                             "links": {"type": "string", "enum": ["public", "members"],
                                       "description": "who sees stream and meeting links on session pages"},
                             "published": {"type": "boolean"}}},
    "EventList": {"type": "object", "required": ["events"],
                  "properties": {"events": {"type": "array", "items": _ref("Event")}}},
    "TokenRequest": {"type": "object", "required": ["email", "password"], "additionalProperties": False,
                     "properties": {"email": {"type": "string", "maxLength": 254},
                                    "password": {"type": "string", "maxLength": 1024},
                                    "name": {"type": "string", "maxLength": 80}}},
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
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                               "role": {"enum": ["speaker", "moderator"]}}},
    "Slot": {"type": "object", "required": ["id", "room_id", "room", "start", "end"], "additionalProperties": False,
             "properties": {"id": {"type": "integer"}, "room_id": {"type": "integer"}, "room": {"type": "string"},
                            "start": ISO_TIME, "end": ISO_TIME}},
    "Session": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "title", "kind", "start", "end", "room", "track", "language", "speakers", "chat_room"],
        "properties": {
            "id": {"type": "integer"}, "guid": {"type": "string", "format": "uuid"}, "title": {"type": "string"},
            "kind": {"enum": ["keynote", "talk", "panel", "workshop", "break", "networking"]},
            "start": {"oneOf": [ISO_TIME, {"type": "null"}]}, "end": {"oneOf": [ISO_TIME, {"type": "null"}]},
            "room": {**NULLABLE_STRING, "description": "null when unscheduled or in several rooms (see slots)"},
            "track": NULLABLE_STRING, "language": {"enum": ["de", "en"]},
            "speakers": {"type": "array", "items": _ref("Speaker")},
            "chat_room": {"type": "string", "pattern": r"^session:\d+$"},
            "cancelled": {"type": "boolean"}, "abstract": {"type": "string", "description": "Markdown"},
            "slots": {"type": "array", "items": _ref("Slot")}}},
    "SessionList": {"type": "object", "required": ["sessions", "version"], "properties": {
        "version": {**NULLABLE_STRING, "description": "name of the release shown (null: none yet)"},
        "sessions": {"type": "array", "items": _ref("Session")}}},
    "Warning": {"type": "object", "required": ["code", "message", "severity"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "severity": {"const": "warning"}, "field": {"type": "string"},
                               "session_id": {"type": "integer"}}},
    "SessionResult": {"type": "object", "required": ["session", "warnings"], "properties": {
        "session": _ref("Session"), "warnings": {"type": "array", "items": _ref("Warning")}}},
    "SpeakerRef": {"oneOf": [{"type": "integer"}, {
        "type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer"}, "role": {"enum": ["speaker", "moderator"]}}}]},
    "SessionWrite": {"type": "object", "additionalProperties": False, "properties": {
        "title": {"type": "string", "maxLength": 200}, "abstract": {"type": "string", "maxLength": 20000},
        "kind": {"enum": ["keynote", "talk", "panel", "workshop", "break", "networking"]},
        "language": {"enum": ["de", "en"]}, "track_id": {"type": ["integer", "null"]},
        "speakers": {"type": "array", "items": _ref("SpeakerRef")},
        "room_id": {"type": "integer"}, "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "cancelled": {"type": "boolean", "description": "PATCH only"}}},
    "SlotWrite": {"type": "object", "additionalProperties": False, "properties": {
        "room_id": {"type": "integer"}, "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"}}},
    "Release": {"type": "object", "required": ["version", "sequence", "published_at", "changes"], "properties": {
        "version": {"type": "string"}, "sequence": {"type": "integer"}, "published_at": ISO_TIME,
        "changes": {"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object", "required": ["id", "title"],
            "properties": {"id": {"type": "integer"}, "title": {"type": "string"}}}}}}},
    "ReleaseList": {"type": "object", "required": ["releases"],
                    "properties": {"releases": {"type": "array", "items": _ref("Release")}}},
    "Starred": {"type": "object", "required": ["sessions"],
                "properties": {"sessions": {"type": "array", "items": {"type": "integer"}}}},
}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {"get": {"summary": "This description", "tags": ["meta"],
                                     "responses": {"200": {"description": "OpenAPI document", "content": {
                                         "application/json": {"schema": {"type": "object"}}}}}}},
    "/healthz": {"get": {"summary": "Health of database and queue", "tags": ["meta"], "responses": {
        "200": _json(_ref("Health"), "Up (maybe degraded)"), "503": _json(_ref("Health"), "Down")}}},
    "/api/v1/auth/token": {"post": {
        "summary": "Issue an API token for e-mail and password", "tags": ["auth"], "requestBody": _body("TokenRequest"),
        "responses": {"201": _json(_ref("Token"), "The token (shown once)"), **_errors(400, 401, 429)}}},
    "/api/v1/auth/tokens": {"get": {
        "summary": "My API tokens", "tags": ["auth"], "security": BEARER,
        "responses": {"200": _json(_ref("TokenList"), "Tokens"), **_errors(401)}}},
    "/api/v1/auth/tokens/{token_id}": {"delete": {
        "summary": "Revoke one of my tokens", "tags": ["auth"], "security": BEARER, "parameters": [TOKEN_ID],
        "responses": {"204": {"description": "Revoked"}, **_errors(401, 404)}}},
    "/api/v1/me": {"get": {"summary": "Who am I", "tags": ["auth"], "security": BEARER,
                           "responses": {"200": _json(_ref("Me"), "The caller"), **_errors(401)}}},
    "/api/v1/events": {"get": {"summary": "Events visible to the caller", "tags": ["events"],
                               "responses": {"200": _json(_ref("EventList"), "Events")}}},
    "/api/v1/events/{slug}": {"get": {"summary": "One event", "tags": ["events"], "parameters": [SLUG],
                                      "responses": {"200": _json(_ref("Event"), "The event"), **_errors(404)}}},
    "/api/v1/events/{slug}/sessions": {
        "get": {"summary": "Sessions of the latest release (or the working agenda)", "tags": ["agenda"],
                "parameters": [SLUG, STATE],
                "responses": {"200": _json(_ref("SessionList"), "Sessions"), **_errors(400, 403, 404)}},
        "post": {"summary": "Create a session, optionally scheduled (room_id, start, end)", "tags": ["agenda"],
                 "security": BEARER, "parameters": [SLUG], "requestBody": _body("SessionWrite"),
                 "responses": {"201": _json(_ref("SessionResult"), "Created"), **_errors(400, 401, 403, 404, 409)}}},
    "/api/v1/events/{slug}/sessions/{session_id}": {
        "get": {"summary": "One session", "tags": ["agenda"], "parameters": [SLUG, SESSION_ID, STATE],
                "responses": {"200": _json(_ref("Session"), "The session"), **_errors(400, 403, 404)}},
        "patch": {"summary": "Change a session (content, cancelled, or its only slot)", "tags": ["agenda"],
                  "security": BEARER, "parameters": [SLUG, SESSION_ID], "requestBody": _body("SessionWrite"),
                  "responses": {"200": _json(_ref("SessionResult"), "Changed"), **_errors(400, 401, 403, 404, 409)}},
        "delete": {"summary": "Delete a session", "tags": ["agenda"], "security": BEARER,
                   "parameters": [SLUG, SESSION_ID],
                   "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)}}},
    "/api/v1/events/{slug}/sessions/{session_id}/slots": {"post": {
        "summary": "Add a slot (a break may have one per room)", "tags": ["agenda"], "security": BEARER,
        "parameters": [SLUG, SESSION_ID], "requestBody": _body("SlotWrite"),
        "responses": {"201": _json(_ref("SessionResult"), "Scheduled"), **_errors(400, 401, 403, 404, 409)}}},
    "/api/v1/events/{slug}/sessions/{session_id}/copy-break": {"post": {
        "summary": "Copy a break to every room", "tags": ["agenda"], "security": BEARER,
        "parameters": [SLUG, SESSION_ID],
        "responses": {"200": _json(_ref("SessionResult"), "Copied"), **_errors(400, 401, 403, 404, 409)}}},
    "/api/v1/events/{slug}/slots/{slot_id}": {
        "patch": {"summary": "Move a slot (room and/or time)", "tags": ["agenda"], "security": BEARER,
                  "parameters": [SLUG, SLOT_ID], "requestBody": _body("SlotWrite"),
                  "responses": {"200": _json(_ref("SessionResult"), "Moved"), **_errors(400, 401, 403, 404, 409)}},
        "delete": {"summary": "Remove a slot", "tags": ["agenda"], "security": BEARER, "parameters": [SLUG, SLOT_ID],
                   "responses": {"204": {"description": "Removed"}, **_errors(401, 403, 404)}}},
    "/api/v1/events/{slug}/agenda/version": {"get": {
        "summary": "The latest release's number (null before the first); ETag, 304 when unchanged",
        "tags": ["agenda"], "parameters": [SLUG],
        "responses": {"200": _json({"type": "object", "required": ["release"],
                                    "properties": {"release": {"type": ["integer", "null"]}}}, "The release"),
                      "304": {"description": "Unchanged since the ETag sent in If-None-Match"}, **_errors(404)}}},
    "/api/v1/events/{slug}/releases": {
        "get": {"summary": "Published releases, newest first", "tags": ["agenda"], "parameters": [SLUG],
                "responses": {"200": _json(_ref("ReleaseList"), "Releases"), **_errors(404)}},
        "post": {"summary": "Publish the working agenda as a named release", "tags": ["agenda"],
                 "security": BEARER, "parameters": [SLUG],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["name"], "additionalProperties": False,
                     "properties": {"name": {"type": "string", "maxLength": 60}}}}}},
                 "responses": {"201": _json(_ref("Release"), "Published"), **_errors(400, 401, 403, 404, 409)}}},
    "/api/v1/events/{slug}/starred": {"get": {
        "summary": "Ids of the sessions in my agenda", "tags": ["agenda"], "security": BEARER, "parameters": [SLUG],
        "responses": {"200": _json(_ref("Starred"), "Starred sessions"), **_errors(401, 404)}}},
    "/api/v1/events/{slug}/sessions/{session_id}/star": {
        "put": {"summary": "Add to my agenda", "tags": ["agenda"], "security": BEARER,
                "parameters": [SLUG, SESSION_ID],
                "responses": {"204": {"description": "Starred"}, **_errors(401, 404)}},
        "delete": {"summary": "Remove from my agenda", "tags": ["agenda"], "security": BEARER,
                   "parameters": [SLUG, SESSION_ID],
                   "responses": {"204": {"description": "Unstarred"}, **_errors(401, 404)}}},
}


def register_paths(app: Flask, paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """Let another domain describe its endpoints in the same document."""
    extra = app.extensions.setdefault(EXTENSION_KEY, {"paths": {}, "schemas": {}})
    extra["paths"].update(paths)
    extra["schemas"].update(schemas or {})


def openapi_document() -> dict[str, Any]:
    extra = current_app.extensions.get(EXTENSION_KEY, {"paths": {}, "schemas": {}})
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "Conference API", "version": "1.0.0",
                 "description": "JSON API of the virtual conference platform. Errors are "
                                "{ok: false, error, message, field}. Times are ISO 8601 with the offset of the "
                                "event's time zone. Cookie-authenticated writes need the X-CSRFToken header."},
        "servers": [{"url": "/"}],
        "paths": {**copy.deepcopy(PATHS), **copy.deepcopy(extra["paths"])},
        "components": {
            "schemas": {**copy.deepcopy(SCHEMAS), **copy.deepcopy(extra["schemas"])},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API token (cft_...)"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "conference_session"},
            },
        },
    }
