"""Ids (and counts) from outside: URL paths, query strings, forms, JSON, socket payloads; ASCII digits in 1..2^63-1.

Python's `int()` takes any Unicode digits ("٣" is 3) and `str.isdigit()` says yes to "²", which `int()` then
refuses; a number past 2^63-1 reaches the database driver and fails there (SQLite: `OverflowError`). Every
id from a client therefore passes through `parse_id`, and the URL converter `int` of this application is
`IdConverter` (installed by the factory for every rule, so no route can use werkzeug's own).
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from werkzeug.routing import BaseConverter, Map, ValidationError

from conference.core.errors import ValidationFailed

MAX_ID = 2**63 - 1  # the largest value of a 64-bit signed database integer (PostgreSQL BIGINT, SQLite)
MAX_ID_DIGITS = len(str(MAX_ID))


def parse_id(value: Any, *, minimum: int = 1) -> int | None:
    """The id `value` stands for, or None.

    Accepted: an `int` (never a `bool`) or a string of ASCII digits, within `minimum`..MAX_ID. A cursor such
    as `after_id` may start at 0 (`minimum=0`); nothing else goes below 1.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not 0 < len(value) <= MAX_ID_DIGITS or not value.isascii() or not value.isdigit():
            return None
        value = int(value)
    if not isinstance(value, int) or not minimum <= value <= MAX_ID:
        return None
    return value


def require_id(value: Any, *, field: str, minimum: int = 1, text: bool = False) -> int:
    """`parse_id` or a 400 that names `field`. Strings count only where the transport has no numbers
    (`text=True`: query strings and form fields); JSON and socket payloads must send a number (a whole one:
    `5.0` counts as 5)."""
    if isinstance(value, float) and value.is_integer() and minimum <= value <= MAX_ID:
        value = int(value)  # JSON has numbers, not integers: 5.0 is the number 5 (JSON Schema agrees)
    number = parse_id(value, minimum=minimum) if text or not isinstance(value, str) else None
    if number is None:
        raise ValidationFailed(_("The field '%(name)s' must be an id (a whole number from %(low)d to %(high)d).",
                                 name=field, low=minimum, high=MAX_ID), field=field)
    return number


def optional_id(value: Any, *, field: str, minimum: int = 1, text: bool = False) -> int | None:
    """Like `require_id`, but an absent value (None, or an empty string for text) is None."""
    if value is None or (text and value == ""):
        return None
    return require_id(value, field=field, minimum=minimum, text=text)


def parse_count(value: Any, *, maximum: int = MAX_ID) -> int | None:
    """A whole number 0..`maximum` typed into a form (minutes, seconds, days), ASCII digits only; or None.

    The services check their own, narrower ranges and say so; this only keeps what is not a number out."""
    if not isinstance(value, str) or not 0 < len(value) <= len(str(maximum)) or not value.isascii() \
            or not value.isdigit():
        return None
    number = int(value)
    return number if number <= maximum else None


def choice_id(value: Any) -> int | None:
    """`coerce` of WTForms select fields that hold ids (0 for a "none" or "new" choice): a malformed or
    out-of-range value becomes None, which is no choice, instead of what `int()` makes of it."""
    return parse_id(value, minimum=0)


def _range_pattern(highest: int) -> str:
    """A regular expression for the decimal numbers 1..`highest`, without leading zeros.

    The whole range is in the pattern (not checked afterwards in `to_python`): werkzeug tries the methods
    of a path before its converters, so a number refused only by the converter of the DELETE rule of a path
    whose GET rule matched would answer "405 Method Not Allowed" instead of 404.
    """
    digits = str(highest)
    width = len(digits)
    shorter = f"[1-9][0-9]{{0,{width - 2}}}"
    same_width = []
    for position, digit in enumerate(map(int, digits)):
        lowest = 1 if position == 0 else 0
        if digit > lowest:
            rest = width - position - 1
            same_width.append(f"{digits[:position]}[{lowest}-{digit - 1}][0-9]{{{rest}}}")
    same_width.append(digits)
    return "(?:" + "|".join([shorter, *same_width]) + ")"


class IdConverter(BaseConverter):
    """The URL converter for ids: ASCII digits only, within 1..MAX_ID; anything else does not match (404).

    Registered under the name `int`, so `<int:session_id>` in every route means this converter. It takes no
    arguments (werkzeug's `int(min=..., signed=...)` would be refused when the rule is added).
    """

    regex = _range_pattern(MAX_ID)

    def __init__(self, map: Map) -> None:  # noqa: A002 - werkzeug's parameter name
        super().__init__(map)

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))  # our own values, when building a link
