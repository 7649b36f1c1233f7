"""CORS: other sites may read the public API and the exports; writes only from the origins an operator names.

- Reads of the public API and the exports (`GET`/`HEAD`, `PUBLIC_READS`) answer any origin with
  `Access-Control-Allow-Origin: *` and never `Allow-Credentials`: a browser then sends no cookie, so a foreign
  page sees what an anonymous visitor sees (or what its own bearer token may see: a token is never ambient).
- Everything else under /api/v1/ (writes, and personal reads such as /api/v1/me, starred sessions, tokens, chat
  history) answers only the origins in `CORS_ORIGINS` (exact `scheme://host[:port]`),
  again without credentials: a foreign page can call the API with a bearer token, never ride on a cookie login
  (a cookie-authenticated write also needs the CSRF token, which no other origin can read).
- Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered for exactly those cases.
Pages, forms and the login never get CORS headers.
"""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, request

from conference.settings import get_settings

READ_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
#: What an anonymous visitor may read anyway (a new API read is personal until it is listed here).
PUBLIC_READS = frozenset({
    "events.api_events", "events.api_event", "agenda.api_openapi", "agenda.api_sessions", "agenda.api_session",
    "agenda.api_agenda_version", "agenda.api_releases", "presentations.api_list", "presentations.download",
    "presentations.thumbnail", "agenda.export_xml", "agenda.export_json", "agenda.export_ics",
})
ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match, If-Modified-Since, Accept-Language"
EXPOSED_HEADERS = "ETag, Last-Modified, X-Schedule-Version, Retry-After"
PREFLIGHT_MAX_AGE = "600"
ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")


def parse_origins(value: str | list[str] | tuple[str, ...] | None) -> frozenset[str]:
    """`CONFERENCE_CORS_ORIGINS`: origins separated by commas or spaces; a malformed one stops the start."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value or ())
    origins = set()
    for item in items:
        origin = item.strip().rstrip("/").lower()
        if not ORIGIN.match(origin):
            raise ValueError(f"CONFERENCE_CORS_ORIGINS: {item!r} is not an origin like https://example.org")
        origins.add(origin)
    return frozenset(origins)


def _is_public_read(method: str) -> bool:
    return method in READ_METHODS and request.routing_exception is None and request.endpoint in PUBLIC_READS


def add_cors_headers(response: Response) -> Response:
    """after_request. Public reads carry `*` with or without an Origin, so a shared cache's copy fits all."""
    origin = request.headers.get("Origin", "")
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    method = request.headers["Access-Control-Request-Method"].upper() if preflight else request.method
    if _is_public_read(method):
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif request.path.startswith("/api/v1/") and origin.lower() in current_app.extensions["cors_origins"]:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    else:
        return response
    response.headers.pop("Access-Control-Allow-Credentials", None)
    if preflight:
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD" if _is_public_read(method) \
            else WRITE_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    else:
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response


def register_cors(app: Flask) -> None:
    app.extensions["cors_origins"] = parse_origins(get_settings(app).cors_origins)
    app.after_request(add_cors_headers)
