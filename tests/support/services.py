"""Real PostgreSQL and Redis for tests: a fresh database per test, a flushed Redis database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import require_service

POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/{db}"


def postgres_available() -> tuple[bool, str]:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True, ""
    except Exception as error:  # noqa: BLE001 - any failure means "not available"
        return False, str(error).splitlines()[0]


def redis_available() -> tuple[bool, str]:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL.format(db=0), socket_connect_timeout=1).ping()
        return True, ""
    except Exception as error:  # noqa: BLE001
        return False, str(error)


@contextmanager
def fresh_postgres_database(driver: str = "psycopg2") -> Iterator[str]:
    """URL (with `driver`) of a fresh, empty PostgreSQL database on the shared server, dropped afterwards."""
    available, reason = postgres_available()
    require_service("PostgreSQL", available, reason)
    name = f"conference_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+{driver}://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database (number 9 to 15, flushed before and after) for one test."""
    available, reason = redis_available()
    require_service("Redis", available, reason)
    import redis

    url = REDIS_URL.format(db=9 + uuid.uuid4().int % 7)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
