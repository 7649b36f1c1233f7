"""The HTTP side of an upload before its body is parsed: who may send how much, the CSRF token, and the body
read straight from the server's input (`receiver.receive_upload` parses it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, same_origin, validate_csrf
from werkzeug.exceptions import ClientDisconnected
from wtforms import ValidationError

from conference.agenda.models import ConferenceSession
from conference.core.api import Unauthenticated
from conference.core.errors import NotAllowed
from conference.core.security import accept_upload, bearer_token
from conference.presentations import services, versions
from conference.presentations.receiver import MULTIPART_OVERHEAD
from conference.presentations.upload_errors import UploadTooLarge


def check_csrf_token(token: str | None) -> None:
    strict = request.is_secure and current_app.config.get("WTF_CSRF_SSL_STRICT", True)
    if strict and (not request.referrer or not same_origin(request.referrer, request.host_url)):
        raise CSRFError(_("The referrer does not match this site."))
    try:
        validate_csrf(token)
    except ValidationError as error:
        raise CSRFError(str(error.args[0]) if error.args else "CSRF") from None


class RequestBody:
    """The request body, read straight from the server's input.

    Flask's `request.stream` copies every chunk twice on the way (a fifth of the time of a large upload), and
    werkzeug reads nothing of a chunked body under eventlet (which does not announce that its input ends
    by itself). With a Content-Length the body is read up to it, and one that ends early counts as a
    disconnect; a chunked body is decoded by the server, which ends it.
    """

    def __init__(self, raw: Any, length: int | None) -> None:
        self.raw, self.remaining = raw, length

    def read(self, size: int) -> bytes:
        if self.remaining is not None:
            if self.remaining <= 0:
                return b""
            size = min(size, self.remaining)
        try:
            data: bytes = self.raw.read(size)
        except (OSError, ValueError):
            raise ClientDisconnected() from None
        if self.remaining is not None:
            if not data:
                raise ClientDisconnected()
            self.remaining -= len(data)
        return data


def request_body() -> Any:
    environ = request.environ
    if request.content_length is not None:
        return RequestBody(environ["wsgi.input"], request.content_length)
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return RequestBody(environ["wsgi.input"], None)
    return request.stream  # no body at all


def admit_upload(session: ConferenceSession) -> tuple[int, Callable[[dict[str, str]], None]]:
    """Who and how much, before a byte of the body is read: raises the body limit of this request to the
    caller's and checks a CSRF header. Returns the file's limit and the check of a CSRF token that comes as
    a form field instead (`receive_upload`'s `on_file`)."""
    if not current_user.is_authenticated:
        raise Unauthenticated(_("Log in or send an API token (Authorization: Bearer ...)."))
    if not services.can_upload(current_user, session):
        raise NotAllowed(_("Only the session's speakers and the organisers may upload slides."))
    limit, message = versions.upload_limit(current_user, session.event)
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise UploadTooLarge(message)
    accept_upload(limit + MULTIPART_OVERHEAD, check_csrf=False)  # the token comes with the streamed body
    csrf_pending = bearer_token() is None
    header_token = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
    if csrf_pending and header_token:
        check_csrf_token(header_token)
        csrf_pending = False

    def on_file(fields: dict[str, str]) -> None:
        if csrf_pending:
            check_csrf_token(fields.get("csrf_token"))

    return limit, on_file
