"""Checks of client input for the live layer: texts, client ids, numbers, rate limits."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _

from conference.core.errors import RateLimited, ValidationFailed
from conference.core.text import has_forbidden_text
from conference.live.models import (
    CLIENT_ID_LIMIT,
)

CLIENT_ID_PATTERN = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{CLIENT_ID_LIMIT}}}$")
REACTIONS = ("applause", "heart", "laugh", "thumbs_up", "idea")


def clean_text(value: Any, *, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(_("The field '%(name)s' must be text.", name=field), field=field)
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValidationFailed(_("Please write something first."), field=field, code="empty")
    if len(text) > limit:
        raise ValidationFailed(_("At most %(n)d characters, please.", n=limit), field=field, code="too_long")
    if has_forbidden_text(text):
        raise ValidationFailed(_("The text contains characters that are not allowed."), field=field)
    return text


def clean_client_id(value: Any) -> str:
    if not isinstance(value, str) or not CLIENT_ID_PATTERN.match(value):
        raise ValidationFailed(
            _("The field 'client_id' must be 1 to %(n)d letters, digits or -_.:", n=CLIENT_ID_LIMIT),
            field="client_id")
    return value


def clean_number(value: Any, *, field: str) -> int:
    """A whole JSON number (minutes, seconds); ids go through `conference.core.ids` instead."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValidationFailed(_("The field '%(name)s' must be a whole number.", name=field), field=field)
    return value


def check_rate(store: Any, key: str, limit: tuple[int, int]) -> None:
    count, window = limit
    if store.hit(key, window) > count:
        raise RateLimited(_("You are sending too fast. Please wait a moment."))
