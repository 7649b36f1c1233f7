"""Time helpers: storage is UTC, display is in the event's time zone."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

from conference.core.db import utcnow

__all__ = ["utcnow", "to_zone", "isoformat", "is_valid_timezone", "parse_iso_datetime"]


def to_zone(value: datetime, timezone: str) -> datetime:
    return value.astimezone(ZoneInfo(timezone))


def isoformat(value: datetime, timezone: str = "UTC") -> str:
    """ISO 8601 with offset, e.g. 2026-05-12T09:00:00+02:00."""
    return to_zone(value, timezone).isoformat(timespec="seconds")


def is_valid_timezone(name: str) -> bool:
    return name in _known_timezones()


@functools.cache
def _known_timezones() -> frozenset[str]:
    """Read once per process: `available_timezones()` walks the whole tz database on the disk (about 16 ms)."""
    return frozenset(available_timezones())


def parse_iso_datetime(text: str, default_timezone: str) -> datetime:
    """Parse ISO 8601; a value without offset is taken in `default_timezone`. Returns UTC."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(default_timezone))
    return value.astimezone(UTC)
