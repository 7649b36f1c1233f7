"""Migrations: an empty database upgrades to head and then matches the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from conference import create_app
from conference.extensions import db
from tests.conftest import settings_for_tests


def pending_differences(app) -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "render_as_batch": True})
        return compare_metadata(context, db.metadata)


def upgrade_and_compare(app) -> None:
    directory = app.extensions["migrate"].directory
    upgrade(directory=directory, revision="heads")
    assert pending_differences(app) == []
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "events", "event_memberships", "api_tokens", "login_sessions", "conference_sessions",
            "timetable_slots", "speaker_profiles", "rooms", "tracks", "alembic_version"} <= tables
    downgrade(directory=directory, revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_sqlite_upgrade_to_head_matches_models(tmp_path: Path) -> None:
    app = create_app(settings_for_tests(tmp_path))
    with app.app_context():
        upgrade_and_compare(app)


def test_single_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


@pytest.mark.postgres
def test_postgres_upgrade_to_head_matches_models(tmp_path: Path, postgres_url: str) -> None:
    app = create_app(settings_for_tests(tmp_path, DATABASE_URL=postgres_url))
    with app.app_context():
        upgrade_and_compare(app)
        db.engine.dispose()
