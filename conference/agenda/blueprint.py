"""The agenda blueprint and small helpers shared by its public, personal, organiser and API views."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, url_for

from conference.agenda.players import Player, player_or_none
from conference.agenda.schedule import Schedule, published_schedule
from conference.events.models import Event

bp = Blueprint("agenda", __name__)


def published_or_404(event: Event) -> Schedule:
    schedule = published_schedule(event)
    if schedule is None:
        abort(404)
    return schedule


@bp.app_template_global()
def optional_url(endpoint: str, **values: Any) -> str | None:
    """A URL for an endpoint that another domain may or may not provide (e.g. speakers.speaker_page)."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


@bp.app_template_global()
def stream_player(kind: str | None, url: str | None) -> Player | None:
    """How a room's stream shows on a session page (None: an address that no longer passes the checks)."""
    return player_or_none(kind, url)
