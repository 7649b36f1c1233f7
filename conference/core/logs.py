"""Log lines an operator's tools can read: one JSON object per line (`CONFERENCE_LOG_FORMAT=json`), each with
the id of the request it belongs to.

Every HTTP response carries `X-Request-Id`: the one the proxy sent (nginx's `$request_id`, letters, digits and
dashes, 8 to 64 of them) or a new one, so a line in the server's log can be matched with the proxy's access log
and with what a user reports. Without `CONFERENCE_LOG_FORMAT=json` the logs stay as they were (plain text).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from conference.settings import settings_of

REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (or None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(config: Any) -> None:
    """Install the JSON handler on the root logger when asked for (`conference run`)."""
    settings = settings_of(config)  # CONFERENCE_LOG_FORMAT and _LOG_LEVEL checked there
    if settings.log_format != "json":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def init_request_ids(app: Flask) -> None:
    @app.before_request
    def _take_request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def _send_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response
