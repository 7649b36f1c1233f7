"""Migrations: an empty database upgrades to head and then matches the models exactly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from conference import create_app
from conference.extensions import db
from tests.conftest import require_service, settings_for_tests

POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


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


def postgres_available() -> tuple[bool, str]:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True, ""
    except Exception as error:  # noqa: BLE001 - any failure means "not available"
        return False, str(error).splitlines()[0]


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    available, reason = postgres_available()
    require_service("PostgreSQL", available, reason)
    name = f"conference_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_upgrade_to_head_matches_models(tmp_path: Path, postgres_database_url: str) -> None:
    app = create_app(settings_for_tests(tmp_path, DATABASE_URL=postgres_database_url))
    with app.app_context():
        upgrade_and_compare(app)
        db.engine.dispose()
