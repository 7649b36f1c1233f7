"""The agenda revision creates exactly the agenda tables of the models, and its downgrade removes them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from conference.extensions import db

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AGENDA_TABLES = {"agenda_releases", "starred_sessions", "calendar_feeds"}


def _conference(instance: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "conference"
    env = {"CONFERENCE_INSTANCE_PATH": str(instance), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT)


def _touches_agenda(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{table}'" in text or f"<{table}>" in text or f"{table}." in text for table in AGENDA_TABLES)


@pytest.mark.server
def test_agenda_migration_matches_models(tmp_path: Path) -> None:
    result = _conference(tmp_path, "db", "upgrade", "heads")
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'conference.sqlite3'}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
        assert set(inspect(connection).get_table_names()) >= AGENDA_TABLES
    assert [d for d in diffs if _touches_agenda(d)] == []
    engine.dispose()


@pytest.mark.server
def test_agenda_migration_downgrade_removes_tables(tmp_path: Path) -> None:
    assert _conference(tmp_path, "db", "upgrade", "0002_agenda").returncode == 0
    assert _conference(tmp_path, "db", "downgrade", "0001_initial").returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'conference.sqlite3'}")
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert tables & AGENDA_TABLES == set()
    assert "conference_sessions" in tables
