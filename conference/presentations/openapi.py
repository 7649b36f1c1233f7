"""The OpenAPI description of the presentations API (slide upload, list, download, preview, delete, visibility)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from conference.core.openapi import BEARER, body, errors, json_content, path_id, ref, register_paths
from conference.presentations.models import CONTENT_TYPES, ThumbnailState, Visibility, VisibilityMode
from conference.presentations.storage import ALLOWED_TYPES

SESSION_ID, PRESENTATION_ID = path_id("session_id"), path_id("presentation_id")
FILE_TYPES = {kind: {"schema": {"type": "string", "contentMediaType": kind}} for kind in CONTENT_TYPES.values()}

SCHEMAS: dict[str, Any] = {
    "Presentation": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "session_id", "version", "is_current", "filename", "file_type", "size", "sha256",
                     "visibility", "visibility_mode", "thumbnail", "created_at", "download_url"],
        "properties": {
            "id": {"type": "integer"}, "session_id": {"type": "integer"}, "version": {"type": "integer"},
            "is_current": {"type": "boolean"}, "filename": {"type": "string"},
            "file_type": {"enum": list(ALLOWED_TYPES)}, "size": {"type": "integer", "minimum": 1},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "visibility": {"enum": [str(v) for v in Visibility]},
            "visibility_mode": {"enum": [str(v) for v in VisibilityMode]},
            "thumbnail": {"enum": [str(v) for v in ThumbnailState]},
            "created_at": {"type": "string"}, "download_url": {"type": "string"},
            "thumbnail_url": {"type": "string", "description": "only when the preview is ready"}}},
    "PresentationList": {"type": "object", "required": ["presentations"], "properties": {
        "presentations": {"type": "array", "items": ref("Presentation")}}},
    "SlideUpload": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream",
                     "description": f"the slides: {', '.join(ALLOWED_TYPES)}; the content must match the name"},
            "csrf_token": {"type": "string", "description": "cookie logins only (or the X-CSRFToken header)"}}},
    "VisibilityChange": {"type": "object", "required": ["visibility_mode"], "additionalProperties": False,
                         "properties": {"visibility_mode": {"enum": [str(v) for v in VisibilityMode]}}},
}

_P = "/api/v1/sessions/{session_id}/presentations"
_FILE = {"200": {"description": "The file (Range requests: 206)", "content": FILE_TYPES},
         "206": {"description": "Part of the file", "content": FILE_TYPES},
         "304": {"description": "Unchanged (If-None-Match / If-Modified-Since)"},
         "416": {"description": "A range beyond the end"}}

PATHS: dict[str, Any] = {
    _P: {
        "post": {"summary": "Upload a new version of the session's slides (speakers of the session, organisers)",
                 "tags": ["presentations"], "security": BEARER, "parameters": [SESSION_ID],
                 "requestBody": body("SlideUpload", "multipart/form-data"),
                 "responses": {"201": json_content(ref("Presentation"), "Stored"),
                               **errors(400, 401, 403, 404, 413, 422),
                               "507": json_content(ref("Error"), "The server's storage is full; nothing stored")}},
        "get": {"summary": "The versions the caller may see (a session no release names: 404 but for organisers "
                           "and its speakers)", "tags": ["presentations"], "parameters": [SESSION_ID],
                "responses": {"200": json_content(ref("PresentationList"), "Versions"), **errors(400, 404)}}},
    f"{_P}/{{presentation_id}}": {
        "patch": {"summary": "Publish, hide, or return to automatic publication (organisers)",
                  "tags": ["presentations"], "security": BEARER, "parameters": [SESSION_ID, PRESENTATION_ID],
                  "requestBody": body("VisibilityChange"),
                  "responses": {"200": json_content(ref("Presentation"), "Changed"),
                                **errors(400, 401, 403, 404, 413)}},
        "delete": {"summary": "Delete one version (its speakers, organisers)", "tags": ["presentations"],
                   "security": BEARER, "parameters": [SESSION_ID, PRESENTATION_ID],
                   "responses": {"204": {"description": "Deleted"}, **errors(400, 401, 403, 404)}}},
    f"{_P}/{{presentation_id}}/download": {"get": {
        "summary": "The file (unpublished versions: 404 for everyone who may not see them)",
        "tags": ["presentations"], "parameters": [SESSION_ID, PRESENTATION_ID],
        "responses": {**_FILE, **errors(404)}}},
    f"{_P}/{{presentation_id}}/thumbnail": {"get": {
        "summary": "A PNG preview of the first slide (404 while there is none)", "tags": ["presentations"],
        "parameters": [SESSION_ID, PRESENTATION_ID],
        "responses": {"200": {"description": "PNG", "content": {"image/png": {"schema": {"type": "string"}}}},
                      "304": {"description": "Unchanged"}, **errors(404)}}},
}


def register(app: Flask) -> None:
    register_paths(app, PATHS, SCHEMAS)
