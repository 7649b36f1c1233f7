"""Loading an object by id within one event: the rule that an id from another event is "not found"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from conference.core.errors import NotFound
from conference.extensions import db

T = TypeVar("T")


def get_in_event_or_404(model: type[T], object_id: Any, event: Any, *, message: str,
                        event_id_of: Callable[[T], int] | None = None) -> T:
    """The `model` row `object_id` if it belongs to `event`, else `NotFound(message)` (404; another event's
    object is as unknown as a missing one). `event_id_of` reads the event of objects that hold it indirectly."""
    found = db.session.get(model, object_id)
    if found is None or (event_id_of(found) if event_id_of else found.event_id) != event.id:  # type: ignore[attr-defined]
        raise NotFound(message)
    return found
