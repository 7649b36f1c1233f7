"""Request-level security: who is calling (cookie or bearer token), CSRF, safe redirects, headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request, session
from flask_wtf.csrf import CSRFError

from conference.extensions import csrf, login_manager

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'; frame-src https:; media-src 'self' https: blob:"
)


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


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
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
    app.before_request(check_csrf)
    app.after_request(add_security_headers)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError) -> Any:
        from flask_babel import gettext as _

        from conference.core.errors import error_response

        return error_response(400, _("The form has expired or was sent from elsewhere. Please try again."),
                              "csrf_failed")
