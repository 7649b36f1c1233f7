"""Request-level security: who is calling (cookie or bearer token), CSRF, safe redirects, headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, Request, Response, g, has_request_context, request, session
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from conference.core.text import has_forbidden_text
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
    from conference.auth import logins

    @login_manager.user_loader
    def load_user(token: str) -> Any:
        if bearer_token() is not None:
            return None  # an explicit bearer token decides alone; the cookie does not count then
        return logins.user_for_login_token(token)

    @login_manager.request_loader
    def load_user_from_request(req: Any) -> Any:
        token = bearer_token()
        if token is None:
            return None
        user = logins.user_for_api_token(token)
        if user is not None:
            g.authenticated_by_token = True
        return user


def check_csrf() -> None:
    """CSRF on every unsafe request, except API calls authenticated by a bearer token (no ambient cookie).

    Runs after routing: an unknown address or a wrong method answers 404/405 (with `Allow`) whatever the
    token. Upload endpoints check it in the view, once the caller is known (`accept_upload`).
    """
    if request.method not in UNSAFE_METHODS or request.routing_exception is not None:
        return
    if request.endpoint in _upload_endpoints:
        return
    _protect_from_csrf()


def _protect_from_csrf() -> None:
    if bearer_token() is not None:
        return
    if request.path.startswith("/api/") and not session.get("_user_id"):
        return  # no cookie login to ride on: the API answers 401 itself (CSRF protects cookie sessions)
    if request.endpoint in _exempt_endpoints:
        return
    with _text_check_paused():  # the token is read from the form; the view's own reading checks the text
        csrf.protect()


_exempt_endpoints: set[str] = set()
_upload_endpoints: set[str] = set()
_body_limits: dict[str, int] = {}


def limit_request_body(endpoint: str, max_bytes: int) -> None:
    """A smaller body limit than MAX_FORM_BYTES for `endpoint`, set once routing found it (before the CSRF
    check or the view reads anything)."""
    _body_limits[endpoint] = max_bytes


def apply_body_limit() -> None:
    limit = _body_limits.get(request.endpoint or "") if request.routing_exception is None else None
    if limit is not None:
        request.max_content_length = min(limit, request.max_content_length or limit)


def upload_endpoint(endpoint: str) -> None:
    """`endpoint` takes a large body, but only from a caller it has checked: nothing reads the body before
    the view (no CSRF form parse), and the view calls `accept_upload` after its authentication and
    permission checks. Every other endpoint keeps the small default limit (`MAX_FORM_BYTES`)."""
    _upload_endpoints.add(endpoint)


def accept_upload(max_bytes: int, *, check_csrf: bool = True) -> None:
    """In an upload view, once the caller may upload: raise this request's body limit to `max_bytes`, refuse
    a larger declared body at once (413, unread) and run the CSRF check deferred for upload endpoints
    (`check_csrf=False` for views that check the token inside a streamed body themselves)."""
    request.max_content_length = max_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise RequestEntityTooLarge()
    if check_csrf and request.method in UNSAFE_METHODS:
        _protect_from_csrf()


def body_limit_message(limit: int | None) -> str:
    from flask_babel import gettext as _

    if limit is None:
        return _("The request is larger than allowed.")
    size = f"{limit / 1048576:.3g} MB" if limit >= 1048576 else f"{limit / 1024:.3g} KB"
    return _("The request is larger than allowed here (at most %(size)s).", size=size)




MAX_JSON_DEPTH = 32
MAX_JSON_VALUES = 10_000  # API bodies are small objects; a million tiny values is an attack on memory
_JSON_STRING = re.compile(rb'"[^"]*"')  # after escaped backslashes and quotes are gone
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_TOO_DEEP = b"[" * (MAX_JSON_DEPTH + 1)


def check_json_shape(raw: bytes) -> str | None:
    """Why `raw` may not be parsed, or None: nesting deeper than MAX_JSON_DEPTH (Python's parser recurses and
    fails with RecursionError), more than MAX_JSON_VALUES values, keys and containers (each one an object in
    memory; the count is an upper bound).

    Looks at the bytes only, with C-speed steps bounded by the limits themselves, before anything is built:
    strings are cut out (at most MAX_JSON_VALUES of them), then each round of removing innermost bracket
    pairs peels one level of nesting.
    """
    from flask_babel import gettext as _

    too_many = _("The JSON body has more than %(n)d values.", n=MAX_JSON_VALUES)
    too_deep = _("The JSON body is nested more than %(n)d levels deep.", n=MAX_JSON_DEPTH)
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    if unescaped.count(b'"') > 2 * MAX_JSON_VALUES:  # every string is a value or a key
        return too_many
    structure = _JSON_STRING.sub(b"", unescaped)
    brackets = structure.translate(None, _NOT_A_BRACKET).replace(b"{", b"[").replace(b"}", b"]")
    if _TOO_DEEP in brackets:
        return too_deep
    if structure.count(b",") + structure.count(b":") + len(brackets) // 2 + 1 > MAX_JSON_VALUES:
        return too_many
    for _level in range(MAX_JSON_DEPTH + 1):
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            return None  # nothing nested is left (unbalanced brackets are the parser's to refuse)
        brackets = peeled
    return too_deep


def _json_strings(value: Any, depth: int = 0) -> Iterable[str]:
    if depth > MAX_JSON_DEPTH:
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


def is_utf8_urlencoded(raw: bytes) -> bool:
    """Werkzeug keeps undecodable %-escapes as literal text; we want to know that they were there."""
    try:
        for pair in raw.split(b"&"):
            unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class MalformedText(BadRequest):
    """Text no field may hold; raised when a view first reads the query string, the form or the JSON body."""

    error_code = "invalid_text"
    custom_message = True


class MalformedBody(BadRequest):
    """A body that is refused before it is parsed (too deep, too many values or fields)."""

    error_code = "invalid_body"
    custom_message = True


def _require_clean(values: Iterable[str], *, utf8: bool = True) -> None:
    if not utf8 or any(has_forbidden_text(value) for value in values):
        from flask_babel import gettext as _

        raise MalformedText(_("The text contains characters that are not allowed."))


class CheckedRequest(Request):
    """Flask's request, with the boundary's text rule applied when a view first reads text from it.

    Refused at the boundary is text no field may hold: invalid UTF-8, NUL and other controls, bidi overrides
    (the domains check the same rule again). The check runs on the first read of `args`, `form` (and
    `values`) and `get_json()`, so after routing (404/405) and after the view's own loading and permission
    checks (404/401/403): a refusal never tells an outsider more than the address would. Streamed uploads
    parse their own body and check their own fields. JSON bodies are also bounded in depth and number of
    values before they are parsed, urlencoded forms in number of fields (werkzeug bounds multipart only).
    """

    _text_paused = False

    @property
    def args(self) -> MultiDict[str, str]:
        args: MultiDict[str, str] = _BASE_ARGS.__get__(self, type(self))
        if self._text_unchecked("args"):
            _require_clean((v for _k, v in args.items(multi=True)), utf8=is_utf8_urlencoded(self.query_string))
        return args

    @property
    def form(self) -> ImmutableMultiDict[str, str]:
        form: ImmutableMultiDict[str, str] = _BASE_FORM.__get__(self, type(self))
        if self._text_unchecked("form"):
            _require_clean((v for _k, v in form.items(multi=True)), utf8=self.__dict__.get("_form_utf8", True))
        return form

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        if self.mimetype == "application/x-www-form-urlencoded":
            raw = self.get_data(cache=True)  # within the body limit; the form parser reads the cached body
            parts = self.max_form_parts
            if parts is not None and raw.count(b"&") >= parts:
                from flask_babel import gettext as _

                raise MalformedBody(_("The form has more than %(n)d fields.", n=parts))
            self.__dict__["_form_utf8"] = is_utf8_urlencoded(raw)
        super()._load_form_data()

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if (force or self.is_json) and self._text_unchecked("json-shape"):
            problem = check_json_shape(self.get_data(cache=True))
            if problem is not None:
                raise MalformedBody(problem)
        data = super().get_json(force=force, silent=silent, cache=cache)
        if data is not None and self._text_unchecked("json"):
            _require_clean(_json_strings(data))
        return data

    def _text_unchecked(self, part: str) -> bool:
        """True once per part, and never while the check is paused (the CSRF check reads the form first)."""
        if self._text_paused:
            return False
        checked: set[str] = self.__dict__.setdefault("_text_checked", set())
        if part in checked:
            return False
        checked.add(part)
        return True


_BASE_ARGS: Any = Request.args  # werkzeug's cached properties, read through by `CheckedRequest`
_BASE_FORM: Any = Request.form


def end_text_checks() -> None:
    """The answer is an error already: text read while it is rendered is not refused again (no 500)."""
    if has_request_context():
        request._get_current_object()._text_paused = True  # type: ignore[attr-defined]


@contextmanager
def _text_check_paused() -> Iterator[None]:
    current = request._get_current_object()  # type: ignore[attr-defined]
    current._text_paused = True
    try:
        yield
    finally:
        current._text_paused = False


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


ENGINEIO_METHODS = "GET, POST, OPTIONS"  # what Engine.IO's polling and handshakes answer


class SecurityHeadersMiddleware:
    """The same baseline headers for answers that never pass through Flask (Engine.IO polling, handshakes).

    Flask's `after_request` covers every Flask response; this wrapper only fills in what is missing, so the
    two never disagree. Engine.IO answers carry session data: they are never cached; its 405s get `Allow`.
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _value in headers}
            headers.extend((name, value) for name, value in BASELINE_HEADERS if name.lower() not in present)
            if "cache-control" not in present:
                headers.append(("Cache-Control", "no-store"))
            if status.startswith("405") and "allow" not in present:
                # Flask's 405s name their methods; Engine.IO's (a PUT or TRACE to /socket.io/) do not.
                headers.append(("Allow", ENGINEIO_METHODS))
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
    app.request_class = CheckedRequest  # the text check runs when a view first reads text (after routing)
    app.before_request(apply_body_limit)
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
