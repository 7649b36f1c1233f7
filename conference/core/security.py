"""Request-level security: who is calling (cookie or bearer token), CSRF, safe redirects, headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, Response, g, request, session
from flask_wtf.csrf import CSRFError

from conference.extensions import csrf, login_manager

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'; frame-src https:; media-src 'self' https: blob:"
)


def policy_with_connect_origins(origins: Iterable[str]) -> str:
    """The baseline policy that also lets scripts fetch from `origins` (exact https origins, e.g. the host of an
    HLS stream that hls.js reads segment by segment); every other source stays as strict as the baseline."""
    allowed = sorted({o for o in origins if re.fullmatch(r"https://[a-z0-9.-]+(:[0-9]{1,5})?", o)})
    if not allowed:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self';", f"connect-src 'self' {' '.join(allowed)};", 1)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def install_login_loaders() -> None:
    """Cookie logins resolve through the server-side login session; API calls through bearer tokens."""
    from conference.auth import services

    @login_manager.user_loader
    def load_user(token: str) -> Any:
        if bearer_token() is not None:
            return None  # an explicit bearer token decides alone; the cookie does not count then
        return services.user_for_login_token(token)

    @login_manager.request_loader
    def load_user_from_request(req: Any) -> Any:
        token = bearer_token()
        if token is None:
            return None
        user = services.user_for_api_token(token)
        if user is not None:
            g.authenticated_by_token = True
        return user


def check_csrf() -> None:
    """CSRF on every unsafe request, except API calls authenticated by a bearer token (no ambient cookie)."""
    if request.method not in UNSAFE_METHODS:
        return
    if bearer_token() is not None:
        return
    if request.path.startswith("/api/") and not session.get("_user_id"):
        return  # no cookie login to ride on: the API answers 401 itself (CSRF protects cookie sessions)
    view = request.endpoint and request.url_rule and request.url_rule.endpoint
    if view in _exempt_endpoints:
        return
    csrf.protect()


_exempt_endpoints: set[str] = set()
_body_limits: dict[str, int] = {}


def limit_request_body(endpoint: str, max_bytes: int) -> None:
    """A smaller body limit for `endpoint`, applied before anything (CSRF, the text check) parses the form."""
    _body_limits[endpoint] = max_bytes

#: Never in text people type: C0 controls but tab/newline/return, DEL, bidi overrides/embeddings/isolates
#: (they make "gpj.exe" look like "exe.jpg"), U+FFFD (what invalid UTF-8 turns into) and lone surrogates.
FORBIDDEN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ufffd\ud800-\udfff]")


def has_forbidden_text(value: str) -> bool:
    return FORBIDDEN_TEXT.search(value) is not None


def _json_strings(value: Any, depth: int = 0) -> Iterable[str]:
    if depth > 32:
        yield "\x00"  # absurd nesting is refused like bad text
    elif isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _json_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item, depth + 1)


MAX_CHECKED_FORM_BYTES = 1024 * 1024


def is_utf8_urlencoded(raw: bytes) -> bool:
    """Werkzeug keeps undecodable %-escapes as literal text; we want to know that they were there."""
    try:
        for pair in raw.split(b"&"):
            unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def reject_malformed_text() -> Any:
    """Refuse, at the boundary, text no field may hold: invalid UTF-8, NUL and other controls, bidi overrides.

    Query strings, form fields and JSON bodies are checked; streamed uploads (CSRF-exempt multipart endpoints
    that parse their own body) are left to their own checks. The domains check the same rule again.
    """
    from flask_babel import gettext as _

    from conference.core.errors import error_response

    if request.endpoint in _body_limits:
        request.max_content_length = _body_limits[request.endpoint]
    texts: list[Iterable[str]] = [(v for _k, v in request.args.items(multi=True))]
    valid = is_utf8_urlencoded(request.query_string)
    if valid and request.mimetype == "application/x-www-form-urlencoded" \
            and (request.content_length or 0) <= MAX_CHECKED_FORM_BYTES:
        valid = is_utf8_urlencoded(request.get_data(cache=True))  # the form parser reads the cached body
    if not valid:
        return error_response(400, _("The text contains characters that are not allowed."), "invalid_text")
    if request.mimetype == "application/x-www-form-urlencoded" or (
            request.mimetype == "multipart/form-data" and request.endpoint not in _exempt_endpoints):
        texts.append(v for _k, v in request.form.items(multi=True))
    elif request.is_json and 0 < (request.content_length or 0) <= MAX_CHECKED_FORM_BYTES:
        texts.append(_json_strings(request.get_json(silent=True)))
    for values in texts:
        if any(has_forbidden_text(value) for value in values):
            return error_response(400, _("The text contains characters that are not allowed."), "invalid_text")
    return None


def csrf_exempt_endpoint(endpoint: str) -> None:
    """For endpoints that take no cookie authentication at all (e.g. token issue with credentials)."""
    _exempt_endpoints.add(endpoint)


def is_safe_redirect(target: str | None) -> bool:
    """Only paths on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target:
        return False
    if any(ch in target for ch in ("\\", "\r", "\n", "\t")) or any(ord(ch) < 32 for ch in target):
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


BASELINE_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def with_frame_ancestors(policy: str) -> str:
    """Views may set a stricter policy of their own (downloads: a sandbox); framing stays forbidden in all."""
    if "frame-ancestors" in policy:
        return policy
    return f"{policy.rstrip('; ')}; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """The same baseline headers for answers that never pass through Flask (Engine.IO polling, handshakes).

    Flask's `after_request` covers every Flask response; this wrapper only fills in what is missing, so the
    two never disagree. Engine.IO answers carry session data: they are never cached.
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _value in headers}
            headers.extend((name, value) for name, value in BASELINE_HEADERS if name.lower() not in present)
            if "cache-control" not in present:
                headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.wsgi_app(environ, start)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["Content-Security-Policy"] = with_frame_ancestors(headers["Content-Security-Policy"])
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Pages of a logged-in user are private; never let a shared cache keep them.
    if "Cache-Control" not in headers and (session.get("_user_id") or g.get("authenticated_by_token")):
        headers["Cache-Control"] = "no-store"
    return response


def register_security(app: Flask) -> None:
    install_login_loaders()
    app.before_request(reject_malformed_text)  # first: it reads the raw form body before anything parses it
    app.before_request(check_csrf)
    app.after_request(add_security_headers)
    # Outermost, after Flask-SocketIO wrapped the app: Engine.IO answers get the headers too.
    app.wsgi_app = SecurityHeadersMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError) -> Any:
        from flask_babel import gettext as _

        from conference.core.errors import error_response

        return error_response(400, _("The form has expired or was sent from elsewhere. Please try again."),
                              "csrf_failed")
