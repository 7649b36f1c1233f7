"""The fence around each library seam: the version range it was tested with and the names it needs.

A seam (a speed-up or fix that reaches into a library's private names) asks `fence.allows(...)` before it
installs itself. Outside the tested range, or with a name gone, it stays off: one log line names the seam,
the library and what is off, and the library's public path serves instead. The ranges are those of the lock
file; `make test-latest` shows when a newer release needs a look (then the range moves with the lock).
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("conference.serving")

# distribution -> (lowest tested, first untested) release; the seams below name which ones they touch.
TESTED = {
    "eventlet": ((0, 36), (0, 42)),
    "python-engineio": ((4, 9), (4, 16)),
    "python-socketio": ((5, 11), (5, 19)),
    "simple-websocket": ((1, 0), (1, 2)),
    "werkzeug": ((3, 0), (3, 2)),
}
switched_off: dict[str, str] = {}  # seam -> why (health, tests)


def release(distribution: str) -> tuple[int, ...] | None:
    """The installed release of `distribution` as numbers (the leading numeric parts), or None."""
    try:
        text = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    numbers = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in numbers.group(0).split(".")) if numbers else None


def problem(distributions: Iterable[str], names: Iterable[tuple[Any, str]] = ()) -> str | None:
    """What keeps a seam off: a release outside its tested range, or a name the library no longer has."""
    for distribution in distributions:
        installed = release(distribution)
        low, high = TESTED[distribution]
        if installed is None:
            return f"{distribution} is not installed"
        if not low <= installed[:len(high)] < high:
            shown = ".".join(map(str, installed))
            return (f"{distribution} {shown} is outside the tested range {'.'.join(map(str, low))} to "
                    f"{'.'.join(map(str, high))} (exclusive)")
    for owner, name in names:
        if not hasattr(owner, name):
            return f"{getattr(owner, '__name__', owner)!s} has no {name}"
    return None


def allows(seam: str, distributions: Iterable[str], names: Iterable[tuple[Any, str]] = (), *,
           fallback: str) -> bool:
    """Whether `seam` may install itself; if not, one warning says why and what serves instead."""
    found = problem(distributions, names)
    if found is None:
        switched_off.pop(seam, None)
        return True
    off(seam, found, fallback=fallback)
    return False


def off(seam: str, why: str, *, fallback: str) -> None:
    """Record and log (one line) that `seam` stays off and what serves instead."""
    switched_off[seam] = why
    log.warning("%s is off: %s; %s", seam, why, fallback)
