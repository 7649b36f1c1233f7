"""Domain errors and the HTTP error pages (HTML for people, JSON for the API)."""

from __future__ import annotations

import errno
from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException


class DomainError(Exception):
    """A business rule refused a change. `code` is stable for clients; `message` is for people."""

    code = "invalid"
    status = 400

    def __init__(self, message: Any = None, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(str(message) if message is not None else self.code)
        self.message = str(message) if message is not None else self.code
        self.field = field
        if code:
            self.code = code

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class ValidationFailed(DomainError):
    code = "invalid"
    status = 400


class Unprocessable(ValidationFailed):
    """Well-formed input (the JSON API's schema allows it) that a rule refuses: an id that names nothing in the
    event, an end before the start, a time outside the event, a date that does not exist. 422, so that a
    client (and the API fuzzer) can tell "you sent the wrong shape" (400) from "this cannot be done"."""

    status = 422


class NotAllowed(DomainError):
    code = "forbidden"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429


class StorageFull(DomainError):
    code = "storage_full"
    status = 507


class Unavailable(DomainError):
    code = "unavailable"
    status = 503


ERROR_TITLES = {
    400: _l("Bad request"),
    401: _l("Please log in"),
    403: _l("Access denied"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    409: _l("Conflict"),
    413: _l("Too large"),
    422: _l("Cannot be processed"),
    429: _l("Too many requests"),
    500: _l("Internal error"),
    503: _l("Temporarily unavailable"),
}

ERROR_TEXTS = {
    400: _l("The request could not be understood."),
    401: _l("You need to log in to see this page."),
    403: _l("You do not have permission to do this."),
    404: _l("There is nothing at this address."),
    405: _l("This address does not accept that kind of request."),
    409: _l("This change conflicts with the current state."),
    413: _l("The upload is larger than allowed."),
    422: _l("The request is well-formed, but it cannot be carried out."),
    429: _l("Too many attempts. Please wait a moment and try again."),
    500: _l("Something went wrong on our side. Please try again."),
    503: _l("The service is temporarily unavailable. Please try again shortly."),
}
# A full disk is temporary for the person uploading: the same words as 503, with its own status and code.
ERROR_TITLES[507] = ERROR_TITLES[503]
ERROR_TEXTS[507] = ERROR_TEXTS[503]


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, message: str | None = None, code: str | None = None,
                   field: str | None = None) -> tuple[Response | str, int]:
    from conference.core.security import end_text_checks

    end_text_checks()
    text = message or str(ERROR_TEXTS.get(status, ERROR_TEXTS[500]))
    if wants_json():
        body: dict[str, Any] = {"ok": False, "error": code or _default_code(status), "message": text}
        if field:
            body["field"] = field
        return jsonify(body), status
    title = str(ERROR_TITLES.get(status, ERROR_TITLES[500]))
    return render_template("errors/error.html", status=status, title=title, message=text), status


def _default_code(status: int) -> str:
    return {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            409: "conflict", 413: "too_large", 422: "unprocessable", 429: "rate_limited", 503: "unavailable",
            507: "storage_full"}.get(status, "error")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(error: DomainError) -> tuple[Response | str, int]:
        from conference.extensions import db

        db.session.rollback()
        return error_response(error.status, error.message, error.code, error.field)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Any:
        status = error.code or 500
        if status < 400:
            return error
        description = error.description if getattr(error, "custom_message", False) else None
        if status == 413 and description is None:
            from conference.core.security import body_limit_message

            description = body_limit_message(request.max_content_length)
        response = make_response(error_response(status, description, getattr(error, "error_code", None)))
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)  # the HTML page too, not only JSON
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> tuple[Response | str, int]:
        from sqlalchemy.exc import OperationalError

        from conference.extensions import db

        db.session.rollback()
        if isinstance(error, OperationalError):
            app.logger.warning("database unavailable: %s", error.orig)
            return error_response(503)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            # The writer removed its partial file on the way out; say clearly that nothing was stored.
            app.logger.error("storage full: %s", error)
            return error_response(507)
        app.logger.exception("unhandled error")
        return error_response(500)


def abort_with(status: int, message: str) -> None:
    """Abort with a message that the error page shows verbatim."""
    from werkzeug.exceptions import default_exceptions

    exc = default_exceptions[status](description=message)
    exc.custom_message = True  # type: ignore[attr-defined]
    raise exc
