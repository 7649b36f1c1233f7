"""Rendered public agenda output kept per release: every anonymous visitor of a release gets the same bytes.

A release never changes, so the day grid, the exports and the JSON API depend only on the release, the event's
own columns, the language, the host name and the URL. Rendering them once per process turns those pages into a
lookup plus two small queries. The only per-visitor part of an anonymous page, the CSRF token of the language
switch in base.html, is rendered as a placeholder and filled in per request (same cookie as before).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from flask import current_app, request, session
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from conference.agenda.schedule import Schedule
from conference.events.models import Event

CACHE_SIZE = 256  # pages of up to ~100 kB: a bounded few MB, whatever query strings arrive
_lock = threading.Lock()
# Random per process, plain ASCII (Jinja's escaping leaves it alone), never guessable from a page.
CSRF_PLACEHOLDER = f"csrf-placeholder-{secrets.token_hex(16)}"
PANELS_PLACEHOLDER = f"<!-- panels-placeholder-{secrets.token_hex(16)} -->"


def event_stamp(event: Event) -> tuple[Any, ...]:
    """Every column of the event: a renamed event or a new time zone is a new key."""
    return tuple(getattr(event, column.key) for column in Event.__table__.columns)


def release_key(event: Event, schedule: Schedule, *parts: Hashable) -> tuple[Any, ...]:
    """The key of something derived from `schedule`, for this host and language."""
    return (event_stamp(event), schedule.version, schedule.published_at, request.host_url, str(get_locale()),
            *parts)


def is_shared_view() -> bool:
    """True when the page is the same for every visitor: nobody logged in, no flashed message waiting."""
    return not current_user.is_authenticated and "_flashes" not in session


def cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """The value for `key`, built once (a rare double build under a race is harmless: same result)."""
    store: OrderedDict[Any, Any] = current_app.extensions.setdefault("agenda_page_cache", OrderedDict())
    with _lock:
        value = store.get(key)
        if value is not None:
            store.move_to_end(key)
            return value
    value = build()
    with _lock:
        store[key] = value
        while len(store) > CACHE_SIZE:
            store.popitem(last=False)
    return value


def render_shared(render: Callable[..., str]) -> str:
    """Render an anonymous page with the CSRF token as a placeholder (the caller caches the result)."""
    return render(csrf_token=lambda: CSRF_PLACEHOLDER)


def personalise(html: str) -> str:
    """Fill in this visitor's CSRF token (creating it in the session cookie as an uncached render would)."""
    if CSRF_PLACEHOLDER not in html:
        return html
    return html.replace(CSRF_PLACEHOLDER, generate_csrf())
