"""`core.db.reads_only`: on PostgreSQL the socket events that only read run their statements without a
transaction (no BEGIN and no COMMIT round trips), and the connection goes back to the pool as it came, so the
next transaction can still be rolled back; SQLite (no round trips to save) is left as it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from conference.config import sqlalchemy_settings
from conference.core.db import reads_only


def autocommit(session: Session) -> bool:
    dbapi = session.connection().connection.dbapi_connection
    return bool(dbapi.autocommit) if hasattr(dbapi, "get_transaction_status") else dbapi.isolation_level is None


def began_on_the_server(session: Session) -> bool:
    """PostgreSQL: whether psycopg2 sent BEGIN (SQLite: sqlite3 begins only before a write, so: False)."""
    dbapi = session.connection().connection.dbapi_connection
    if not hasattr(dbapi, "get_transaction_status"):
        return False
    import psycopg2.extensions as ext

    return dbapi.get_transaction_status() == ext.TRANSACTION_STATUS_INTRANS  # type: ignore[no-any-return]


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    engine = create_engine(url, **{**sqlalchemy_settings(url), "pool_size": 1} if "postgresql" in url
                           else sqlalchemy_settings(url))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t (id) VALUES (1)"))
    yield engine
    engine.dispose()


def test_statements_of_a_reading_session_run_without_a_transaction(engine: Engine) -> None:
    on_postgres = engine.dialect.name == "postgresql"
    with Session(engine) as session:
        session.execute(text("SELECT id FROM t"))
        assert not autocommit(session) and began_on_the_server(session) == on_postgres  # the usual way
        session.rollback()
    with Session(engine) as session:
        reads_only(session)
        assert session.execute(text("SELECT id FROM t")).scalar_one() == 1
        assert autocommit(session) == on_postgres and not began_on_the_server(session)
        session.commit()
    with Session(engine) as session:  # the same pooled connection, back to transactions
        session.execute(text("INSERT INTO t (id) VALUES (3)"))
        assert not autocommit(session) and began_on_the_server(session) == on_postgres
        session.rollback()
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1  # the insert was undone
        session.rollback()


def test_a_session_already_in_a_transaction_is_left_as_it_is(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(text("INSERT INTO t (id) VALUES (2)"))
        reads_only(session)
        session.rollback()
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1  # the insert was undone


def test_a_scoped_session_as_flask_sqlalchemy_gives_it(engine: Engine) -> None:
    from sqlalchemy.orm import scoped_session, sessionmaker

    session = scoped_session(sessionmaker(engine))
    reads_only(session)
    assert session.execute(text("SELECT id FROM t")).scalar_one() == 1
    assert autocommit(session()) == (engine.dialect.name == "postgresql")
    session.remove()
