"""`core.db.execute_committed`: the chat INSERT's lean path straight to the driver, on real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, create_engine, event, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from conference.core.db import UTCDateTime, execute_committed

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(20), unique=True),
              Column("at", UTCDateTime))
STATEMENT = sqlite.insert(notes).values(text=bindparam("text"), at=bindparam("at")) \
    .on_conflict_do_nothing(index_elements=["text"]).returning(notes.c.id)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{tmp_path / 'notes.sqlite3'}")

    @event.listens_for(engine, "connect")
    def short_busy_timeout(dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA busy_timeout=200")  # the application's 5 s would only slow the test

    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_returns_the_id_commits_and_converts_like_sqlalchemy(engine) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2027, 3, 18, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    first = execute_committed(engine, STATEMENT, {"text": "eins", "at": at})
    assert execute_committed(engine, STATEMENT, {"text": "zwei", "at": at}) == first + 1
    assert execute_committed(engine, STATEMENT, {"text": "eins", "at": at}) is None  # conflict: no row
    with engine.connect() as connection:  # another connection sees it: committed
        rows = connection.execute(select(notes.c.text, notes.c.at).order_by(notes.c.id)).all()
    assert rows == [("eins", at.astimezone(UTC)), ("zwei", at.astimezone(UTC))]


def test_a_locked_database_is_sqlalchemys_operational_error_and_nothing_is_kept(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = sqlite3.connect(tmp_path / "notes.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(OperationalError):
            execute_committed(engine, STATEMENT, {"text": "gesperrt", "at": None})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert execute_committed(engine, STATEMENT, {"text": "danach", "at": None}) is not None  # the pool still works
    with engine.connect() as connection:
        assert connection.execute(select(notes.c.text)).scalars().all() == ["danach"]


def test_a_constraint_error_is_sqlalchemys_integrity_error(engine) -> None:  # type: ignore[no-untyped-def]
    plain = insert(notes).values(text=bindparam("text"), at=bindparam("at")).returning(notes.c.id)
    execute_committed(engine, plain, {"text": "x", "at": None})
    with pytest.raises(IntegrityError):
        execute_committed(engine, plain, {"text": "x", "at": None})
