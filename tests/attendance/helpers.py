"""Shared arrangements of the attendance tests: an event with sessions and people, presence written directly."""

from __future__ import annotations

from typing import Any

from conference.attendance.collector import record_presence
from conference.core.permissions import Role
from conference.extensions import db

T0 = 28_000_000  # a minute number (2023-03-28): the tests write whole minutes relative to it


def world(create_event: Any, create_session: Any, person: Any, *, slug: str = "tagung",
          names: tuple[str, ...] = ("Jörg Müller", "Änne Weiß", "Zoë Brandt")) -> dict[str, Any]:
    event = create_event(slug, title="Fachtagung Wärmewende")
    first = create_session(event, title="Eröffnung und Grüße")
    second = create_session(event, title="Podium: Städte & Gemeinden")
    people = [person(event, Role.ATTENDEE, name=name) for name in names]
    return {"event": event, "sessions": [first, second], "people": people}


def present(event: Any, user: Any, room: str, minutes: range | list[int]) -> None:
    for minute in minutes:
        record_presence(minute, [(user.id, room, event.id)])
    db.session.commit()
