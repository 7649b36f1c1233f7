"""The OpenAPI description of the live API: the chat history for bots and exports."""

from __future__ import annotations

from typing import Any

from flask import Flask

from conference.core.ids import MAX_ID
from conference.core.openapi import SLUG, errors, json_content, ref, register_paths
from conference.live.rooms import ROOM_PATTERN

SCHEMAS: dict[str, Any] = {
    "ChatMessage": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "room", "text", "client_id", "author", "created_at"],
        "properties": {
            "id": {"type": "integer"}, "room": {"type": "string"}, "text": {"type": "string"},
            "client_id": {"type": "string"}, "created_at": {"type": "string"},
            "author": {"type": "object", "required": ["id", "name", "role"], "properties": {
                "id": {"type": ["integer", "null"]}, "name": {"type": "string"}, "role": {"type": "string"}}}}},
    "ChatHistory": {"type": "object", "required": ["ok", "room", "messages"], "properties": {
        "ok": {"const": True}, "room": {"type": "string"},
        "messages": {"type": "array", "items": ref("ChatMessage")}}},
}

PATHS: dict[str, Any] = {
    "/api/v1/events/{slug}/chat": {"get": {
        "summary": "Chat history of a room: the latest messages, or those after `after_id` (registered people)",
        "tags": ["live"], "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "parameters": [
            SLUG,
            {"name": "room", "in": "query", "required": True,
             "description": "`lobby:<slug>` or `session:<id>` (a session of this event that a release names); "
                            "any other: 404 `unknown_room`",
             "schema": {"type": "string", "pattern": ROOM_PATTERN.pattern}},
            {"name": "after_id", "in": "query", "required": False,
             "description": "only messages with a larger id (0 to 2^63-1)",
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}],
        "responses": {"200": json_content(ref("ChatHistory"), "Messages in id order"),
                      **errors(400, 401, 403, 404)}}},
}


def register(app: Flask) -> None:
    register_paths(app, PATHS, SCHEMAS)
