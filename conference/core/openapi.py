"""The OpenAPI 3.1 document of the JSON API: its shared building blocks and its assembly from the domains' parts.

Every domain describes its own `/api/v1` routes (`conference/<domain>/openapi.py`) and adds them with
`register_paths`; `openapi_document()` joins them. Schemas are plain JSON Schema 2020-12, exact enough that a
request the schema allows is never refused as malformed (400) and one it forbids is never accepted: the
server's own checks (ids, text, times) are written here as patterns and ranges. tests/agenda/test_openapi.py
checks that every route is described and the reverse; tests/api/test_fuzz.py runs Schemathesis against it.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask, current_app

from conference.core.ids import MAX_ID

EXTENSION_KEY = "conference_openapi"

# Characters no text field may hold (`conference.core.text.FORBIDDEN_TEXT`), as a JSON Schema class.
# Lone surrogates are left out: JSON Schema tools cannot use them in a pattern, and they never come from
# well-formed UTF-8 (the server refuses them all the same).
FORBIDDEN_CLASS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufffd"
# What `str.strip()` removes (Python's whitespace), less what is forbidden anyway.
BLANK_CLASS = r"\t\n\r\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WHITESPACE_CLASS = BLANK_CLASS + r"\u000b\u000c\u001c-\u001f"
TEXT_PATTERN = f"^[^{FORBIDDEN_CLASS}]*$"
# Text that is not empty once stripped (titles, names): blanks, one visible character, then anything allowed.
FILLED_PATTERN = f"^[{BLANK_CLASS}]*[^{WHITESPACE_CLASS}{FORBIDDEN_CLASS}][^{FORBIDDEN_CLASS}]*$"
# The times the API reads (`conference.agenda.api`): a calendar date, hours and minutes, optional seconds and
# fraction, optional offset (without it, the event's time zone). A value of this shape that names no real
# time (30 February) is 422, anything else 400.
TIME_PATTERN = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
                r"(:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$")
TIME_MAX_LENGTH = 40


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_TEXTS = {
    400: "Malformed input (wrong type, missing or unknown field, bad JSON, text with forbidden characters, "
         "missing CSRF token on a cookie-authenticated write); `field` names it",
    401: "Not logged in, or the token is unknown or revoked",
    403: "Not allowed (or the privacy notice awaits acceptance, for cookie logins)",
    404: "Not found (ids outside 1..2^63-1 too; drafts are 404 for everyone but organisers)",
    409: "Conflicts with the current state (a room or speaker already taken, a release without changes)",
    413: "The body is larger than allowed",
    422: "Well-formed, but refused by a rule (an id that names nothing in the event, end before start, a time "
         "outside the event, a date that does not exist)",
    429: "Too many attempts; `Retry-After` says how many seconds to wait",
}


def errors(*codes: int) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code in codes:
        responses[str(code)] = json_content(ref("Error"), ERROR_TEXTS[code])
        if code == 429:
            responses[str(code)]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
    return responses


def body(name: str, content_type: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {content_type: {"schema": ref(name)}}}


def text(max_length: int, *, filled: bool = False, **extra: Any) -> dict[str, Any]:
    """A text field as the server reads it: at most `max_length` characters, no forbidden characters, and
    (`filled`) something other than blanks."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length,
                              "pattern": FILLED_PATTERN if filled else TEXT_PATTERN}
    if filled:
        schema["minLength"] = 1
    return {**schema, **extra}


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TIME_INPUT = {"type": "string", "maxLength": TIME_MAX_LENGTH, "pattern": TIME_PATTERN,
              "description": "ISO 8601, e.g. 2027-03-18T09:00:00+01:00; without an offset in the event's time zone"}
ISO_TIME = {"type": "string", "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$"}
NULLABLE_STRING = {"type": ["string", "null"]}
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"cookieAuth": []}]


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": dict(ID),
            "description": "An id from 1 to 2^63-1 (anything else: 404)"}


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}

ERROR_SCHEMA = {"type": "object", "required": ["ok", "error", "message"], "properties": {
    "ok": {"const": False}, "error": {"type": "string"}, "message": {"type": "string"},
    "field": {"type": "string"}}}


def register_paths(app: Flask, paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """Let a domain describe its endpoints in the one document."""
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
                                "{ok: false, error, message, field}: 400 malformed, 422 well-formed but refused by "
                                "a rule, 409 a conflict. Times are ISO 8601 with the offset of the event's time "
                                "zone. Cookie-authenticated writes need the X-CSRFToken header. A method a path "
                                "does not have is 405 with `Allow`."},
        "servers": [{"url": "/"}],
        "paths": copy.deepcopy(extra["paths"]),
        "components": {
            "schemas": {"Error": copy.deepcopy(ERROR_SCHEMA), **copy.deepcopy(extra["schemas"])},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API token (cft_...)"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "conference_session"},
            },
        },
    }
