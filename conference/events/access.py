"""Loading an event from the URL and checking a permission in it, for views and API endpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from conference.core.api import Unauthenticated
from conference.core.errors import NotAllowed
from conference.core.permissions import Permission, has_permission
from conference.events.models import Event
from conference.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


def can_see_event(user: Any, event: Event) -> bool:
    return event.is_published or has_permission(user, event, Permission.VIEW_EVENT)


def may_see_links(user: Any, event: Event) -> bool:
    """Stream and meeting links: for everyone, or (members only) for people registered for the event."""
    return not event.links_for_members_only or has_permission(user, event, Permission.JOIN_LIVE)


def load_event(slug: str) -> Event:
    """The event for `slug`; unpublished events are 404 for everyone who may not prepare them."""
    event = db.session.scalar(select(Event).where(Event.slug == slug))
    if event is None or not can_see_event(current_user, event):
        abort(404)
    return event


def require(event: Event, permission: Permission) -> None:
    """Raise 401 for anonymous callers and 403 for people without `permission` in `event`."""
    if not current_user.is_authenticated:
        raise Unauthenticated(_("Please log in."))
    if not has_permission(current_user, event, permission):
        raise NotAllowed(_("You do not have permission to do this."))


def event_permission_required(permission: Permission) -> Callable[[F], F]:
    """Decorator for routes with a `slug` argument: loads the event, checks `permission`, passes `event`."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, slug: str, **kwargs: Any) -> Any:
            event = load_event(slug)
            if not current_user.is_authenticated and not request.path.startswith("/api/"):
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            require(event, permission)
            return view(*args, event=event, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
