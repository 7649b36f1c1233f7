"""Helpers for the JSON API: body parsing with clear errors and API-style login checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import request
from flask_babel import gettext as _
from flask_login import current_user

from conference.core.errors import DomainError, ValidationFailed
from conference.core.ids import require_id

F = TypeVar("F", bound=Callable[..., Any])


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong."""
    if not request.is_json:
        raise ValidationFailed(_("Send the body as JSON (Content-Type: application/json)."), code="invalid_json")
    data = request.get_json(silent=True)
    if data is None:
        raise ValidationFailed(_("The body is not valid JSON."), code="invalid_json")
    if not isinstance(data, dict):
        raise ValidationFailed(_("The body must be a JSON object."), code="invalid_json")
    return data


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = True,
          max_length: int | None = None) -> Any:
    """Read one field with its type checked; `bool` is never accepted as an `int`."""
    if name not in data or data[name] is None:
        if required:
            raise ValidationFailed(_("The field '%(name)s' is required.", name=name), field=name)
        return None
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ValidationFailed(_("The field '%(name)s' has the wrong type.", name=name), field=name)
    if not isinstance(value, kinds):
        raise ValidationFailed(_("The field '%(name)s' has the wrong type.", name=name), field=name)
    if max_length is not None and isinstance(value, str) and len(value) > max_length:
        raise ValidationFailed(
            _("The field '%(name)s' may have at most %(n)d characters.", name=name, n=max_length), field=name
        )
    return value


def id_field(data: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    """Read one id field (a JSON number within 1..2^63-1, see `conference.core.ids`), or a 400 naming it."""
    if name not in data or data[name] is None:
        if required:
            raise ValidationFailed(_("The field '%(name)s' is required.", name=name), field=name)
        return None
    return require_id(data[name], field=name)


def api_login_required(view: F) -> F:
    """Like `login_required`, but answers 401 JSON instead of redirecting."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            raise Unauthenticated(_("Log in or send an API token (Authorization: Bearer ...)."))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
