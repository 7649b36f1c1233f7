"""The schedule import on PostgreSQL: the preview's savepoint, the unique import guid, a sync with removals."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conference.agenda.frab_reader import parse_schedule
from conference.agenda.importing import apply_import, preview_import
from conference.agenda.models import ConferenceSession
from conference.core import after_commit
from conference.extensions import db
from tests.conftest import settings_for_tests

pytestmark = pytest.mark.postgres
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pretalx"


@pytest.fixture
def app_settings(tmp_path: Path, postgres_url: str) -> dict[str, Any]:
    return settings_for_tests(tmp_path, DATABASE_URL=postgres_url)


def titles(event) -> list[str]:
    return sorted(db.session.scalars(select(ConferenceSession.title).where(ConferenceSession.event_id == event.id)))


def test_preview_rolls_back_and_sync_applies_on_postgres(create_event) -> None:
    event = create_event("pg-import", end=date(2027, 3, 19))
    first = parse_schedule((FIXTURES / "schedule-v1.0.xml").read_bytes(), default_timezone=event.timezone)
    preview = preview_import(event, first)
    assert preview.plan.count("create") == 5 and preview.new_problems == []
    assert titles(event) == []
    apply_import(event, first, actor=None)
    after_commit.commit()
    assert len(titles(event)) == 5
    second = parse_schedule((FIXTURES / "schedule-v1.1.xml").read_bytes(), default_timezone=event.timezone)
    result = apply_import(event, second, remove_missing=True, actor=None)
    after_commit.commit()
    assert (result.plan.count("update"), result.plan.count("delete")) == (2, 1)
    assert "Hands-on: Barrierefreie Formulare" not in titles(event)
    db.engine.dispose()
