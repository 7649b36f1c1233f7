"""The one ending of a form post that changes something: the service call, then either the refusal shown at
its field (rolled back, the form shown again) or the commit, a notice and a redirect (303, so a reload does not
post again). Services flush and raise `DomainError`; this is where the page commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import flash, redirect
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from conference.core import after_commit
from conference.core.errors import DomainError
from conference.extensions import db

Result = TypeVar("Result")


def save_form(form: FlaskForm, change: Callable[[], Result], *, field: str,
              saved: str | Callable[[Result], str], then: str) -> Response | None:
    """Run `change()`. Refused: roll back, put the message at the form field the error names (else `field`)
    and return None, meaning "render the form again" (with status 400). Done: commit (with the side effects
    deferred to after the commit), flash `saved` (or `saved(result)`) and redirect to `then`."""
    try:
        result = change()
    except DomainError as error:
        db.session.rollback()
        target: Any = getattr(form, error.field or field, None) or getattr(form, field)
        target.errors.append(error.message)
        return None
    after_commit.commit()
    flash(saved(result) if callable(saved) else saved, "success")
    return redirect(then, code=303)
