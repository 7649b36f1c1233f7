"""Limits of the agenda's fields (shared with the OpenAPI document) and the text check every editor uses."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _

from conference.core.errors import ValidationFailed
from conference.core.text import has_forbidden_text

TITLE_MAX = 200
ABSTRACT_MAX = 20_000
NAME_MAX = 120
RELEASE_NAME_MAX = 60
STREAM_URL_MAX = 500
MAX_SPEAKERS = 20
COLOR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
LANGUAGES = ("de", "en")


def clean_text(value: Any, *, field: str, max_length: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(_("The field '%(name)s' has the wrong type.", name=field), field=field)
    text = value.strip()
    if required and not text:
        raise ValidationFailed(_("The field '%(name)s' is required.", name=field), field=field)
    if has_forbidden_text(text):
        raise ValidationFailed(_("The text contains characters that are not allowed."), field=field)
    if len(text) > max_length:
        raise ValidationFailed(_("The field '%(name)s' may have at most %(n)d characters.", name=field,
                                 n=max_length), field=field)
    return text
