"""`core.db.ping_after_idle` on a real PostgreSQL: a pooled connection that sat idle is checked and replaced
when the server dropped it; one given back moments ago is used without a check (so a drop within that moment
shows as one failed statement, after which the pool recovers)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from conference.config import sqlalchemy_settings
from conference.core.db import ping_after_idle

pytestmark = pytest.mark.postgres


def backend_pid(engine: object) -> int:
    with engine.connect() as connection:  # type: ignore[attr-defined]
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(url: str, pid: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()
    time.sleep(0.1)


def test_an_idle_connection_the_server_dropped_is_replaced_at_checkout(postgres_url: str) -> None:
    options = sqlalchemy_settings(postgres_url)
    assert options["pool_pre_ping"] is False and options["max_overflow"] == 0
    engine = create_engine(postgres_url, **{**options, "pool_size": 1})
    ping_after_idle(engine, idle_seconds=0.3)
    first = backend_pid(engine)
    terminate(postgres_url, first)
    time.sleep(0.4)  # idle longer than the limit: checked at checkout, found dead, replaced
    second = backend_pid(engine)
    assert second != first
    engine.dispose()


def test_a_connection_used_moments_ago_is_not_checked(postgres_url: str) -> None:
    engine = create_engine(postgres_url, **{**sqlalchemy_settings(postgres_url), "pool_size": 1})
    ping_after_idle(engine, idle_seconds=30)
    first = backend_pid(engine)
    terminate(postgres_url, first)
    with pytest.raises(OperationalError), engine.connect() as connection:  # no check: the statement fails
        connection.execute(text("SELECT 1"))
    assert backend_pid(engine) != first  # SQLAlchemy dropped the dead connection; the next one works
    engine.dispose()


def test_the_check_leaves_no_transaction_open(postgres_url: str) -> None:
    """The next user of the connection starts from a clean state (e.g. may switch it to autocommit)."""
    engine = create_engine(postgres_url, **{**sqlalchemy_settings(postgres_url), "pool_size": 1})
    ping_after_idle(engine, idle_seconds=0.05)
    backend_pid(engine)
    time.sleep(0.1)
    with engine.connect() as connection:  # checked at checkout
        assert connection.connection.dbapi_connection.info.transaction_status == 0  # idle
    engine.dispose()
