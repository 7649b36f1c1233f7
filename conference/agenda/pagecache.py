"""Rendered public agenda output kept per release: every anonymous visitor of a release gets the same bytes.

A release never changes, so the day grid, the exports and the JSON API depend only on the release, the event's
own columns, the language, the site's address and the URL, and on whatever else a page shows that is not in the
release (the exports' slide links): that goes into the key too, computed per request. Rendering them once per
process turns those pages into a lookup plus a few small queries. The only per-visitor part of an anonymous
page, the CSRF token of the language switch in base.html, is rendered as a placeholder and filled in per
request (same cookie as before).

The session page's panels (slides, questions) change between releases: their domains drop them after each
committed change (`forget_panels`), and a panel that changes by itself at a known time (slides published when
the session ends) says so while it is rendered (`changes_at`), so it is not kept past that moment.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

from flask import Flask, current_app, g, has_app_context, request, session
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from conference.agenda.schedule import Schedule
from conference.core.cache import ExpiringCache
from conference.core.db import utcnow
from conference.events.models import Event

CACHE_SIZE = 256  # pages of up to ~100 kB: a bounded few MB, whatever query strings arrive
_lock = threading.Lock()
# Random per process, plain ASCII (Jinja's escaping leaves it alone), never guessable from a page.
CSRF_PLACEHOLDER = f"csrf-placeholder-{secrets.token_hex(16)}"
PANELS_PLACEHOLDER = f"<!-- panels-placeholder-{secrets.token_hex(16)} -->"
PANELS_TTL = 5.0  # seconds an anonymous session's slides and questions panels are reused
PANELS_CACHE_SIZE = 1024


def event_stamp(event: Event) -> tuple[Any, ...]:
    """Every column of the event: a renamed event or a new time zone is a new key."""
    return tuple(getattr(event, column.key) for column in Event.__table__.columns)


def release_key(event: Event, schedule: Schedule, *parts: Hashable) -> tuple[Any, ...]:
    """The key of something derived from `schedule`, for this site address (scheme, host, path prefix) and
    language; `parts` add whatever else the output shows."""
    return (event_stamp(event), schedule.version, schedule.published_at, request.url_root, str(get_locale()),
            *parts)


def stamp(value: Any) -> str:
    """A key part for plain data (dicts, lists) that the output shows: its canonical JSON."""
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def is_shared_view() -> bool:
    """True when the page is the same for every visitor: nobody logged in, no flashed message waiting."""
    return not current_user.is_authenticated and "_flashes" not in session


def cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """The value for `key`, built once (a rare double build under a race is harmless: same result)."""
    store = current_app.extensions.get("agenda_page_cache")
    if store is None:
        store = current_app.extensions.setdefault("agenda_page_cache", ExpiringCache(max_entries=CACHE_SIZE))
    return store.get(key, build)


def render_shared(render: Callable[..., str]) -> str:
    """Render an anonymous page with the CSRF token as a placeholder (the caller caches the result)."""
    return render(csrf_token=lambda: CSRF_PLACEHOLDER)


def personalise(html: str) -> str:
    """Fill in this visitor's CSRF token (creating it in the session cookie as an uncached render would)."""
    if CSRF_PLACEHOLDER not in html:
        return html
    return html.replace(CSRF_PLACEHOLDER, generate_csrf())


def changes_at(moment: datetime | None) -> None:
    """Called while a cached output is rendered: it changes by itself at `moment` (e.g. slides that are
    published when their session ends), so the cache must not keep it past then."""
    horizons: list[datetime | None] | None = g.get("cache_horizons") if has_app_context() else None
    if moment is None or not horizons:
        return
    current = horizons[-1]
    horizons[-1] = moment if current is None else min(current, moment)


def _render_with_horizon(build: Callable[[], str]) -> tuple[str, datetime | None]:
    """`build()` and the earliest moment it reported through `changes_at`."""
    if not has_app_context():
        return build(), None
    horizons: list[datetime | None] = g.setdefault("cache_horizons", [])
    horizons.append(None)
    try:
        value = build()
    finally:
        horizon = horizons.pop()
    return value, horizon


def panel_cache(app: Flask | None = None) -> ExpiringCache[tuple[Any, ...], tuple[str, float | None]]:
    """Rendered panels by key (the session id first) with the seconds they stay true (None: until PANELS_TTL)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.get("agenda_panel_cache")
    if cache is None:
        cache = app.extensions.setdefault("agenda_panel_cache", ExpiringCache(PANELS_TTL, PANELS_CACHE_SIZE))
    return cache  # type: ignore[no-any-return]


def session_panels(event: Event, session_id: int, build: Callable[[], str]) -> str:
    """The anonymous panels of a session page, rendered by `build` at most once per PANELS_TTL seconds, and
    never kept past the moment the render reported through `changes_at`."""
    key = (session_id, event_stamp(event), request.url_root, request.path, str(get_locale()))

    def render() -> tuple[str, float | None]:
        html, horizon = _render_with_horizon(build)
        return html, None if horizon is None else (horizon - utcnow()).total_seconds()

    value = panel_cache().get(key, render, keep_for=lambda rendered: rendered[1])
    assert value is not None
    return value[0]


def forget_panels(session_id: int, app: Flask | None = None) -> None:
    """After a committed change of a session's slides or questions: render its panels afresh."""
    if app is None and not has_app_context():
        return
    panel_cache(app).forget(lambda key: key[0] == session_id)
