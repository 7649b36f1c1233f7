"""Presence minutes on PostgreSQL: two workers writing the same minute (ON CONFLICT DO NOTHING), reaction
counts added up (ON CONFLICT DO UPDATE), the 5-minute buckets (integer division)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conference.attendance import services
from conference.attendance.collector import PresenceCollector
from conference.attendance.models import PresenceMinute, ReactionMinute
from conference.extensions import db
from conference.live.state import ConnectionRegistry, SocketIdentity
from tests.attendance.helpers import T0, world
from tests.conftest import settings_for_tests

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_settings(tmp_path: Path, postgres_url: str) -> dict[str, Any]:
    return settings_for_tests(tmp_path, DATABASE_URL=postgres_url)


def test_two_workers_and_reactions_on_postgres(app: Any, create_event: Any, create_session: Any,
                                               person: Any) -> None:
    w = world(create_event, create_session, person)
    event, (first, _), people = w["event"], w["sessions"], w["people"]
    room = f"session:{first.id}"
    workers = []
    for number in range(2):
        registry = ConnectionRegistry()
        for user in people:
            registry.add(f"{number}-{user.id}", SocketIdentity(user_id=user.id))
            registry.enter(f"{number}-{user.id}", room, event.id)
        worker = PresenceCollector(app, registry=registry, clock=lambda: T0 * 60.0 + 1)
        worker.count_reactions(room, event.id, 2)
        workers.append(worker)
    assert [worker.sample() for worker in workers] == [3, 3]
    assert db.session.scalar(select(ReactionMinute.count)) == 4
    assert len(db.session.scalars(select(PresenceMinute.user_id)).all()) == 3
    figures = {f.session_id: f for f in services.session_figures(event)}[first.id]
    assert (figures.unique_attendees, figures.peak_concurrent, figures.person_minutes) == (3, 3, 3)
    assert [people for _at, people in services.timeline(event)] == [3]
