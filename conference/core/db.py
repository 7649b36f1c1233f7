"""Declarative base with a naming convention, small column helpers, and a lean path for the hottest write."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zone type, so values are stored naive in UTC and given back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL lets readers work while one writer writes; the busy timeout waits for a lock instead of failing."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _PreparedStatement(NamedTuple):
    sql: str
    order: tuple[str, ...] | None  # parameter names in order for positional drivers; None: named parameters
    convert: dict[str, Callable[[Any], Any]]  # the columns' bind processors (e.g. datetimes for SQLite)


@lru_cache(maxsize=8)
def _prepared(statement: ClauseElement, dialect: Dialect) -> _PreparedStatement:
    compiled: Any = statement.compile(dialect=dialect)
    convert = {}
    for name, parameter in compiled.binds.items():
        processor = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            convert[name] = processor
    order = tuple(compiled.positiontup) if compiled.positional else None
    return _PreparedStatement(str(compiled), order, convert)


def execute_committed(engine: Engine, statement: ClauseElement, params: dict[str, Any]) -> Any:
    """Run one prepared statement (its parameters all bound by name) in a transaction of its own on a pooled
    driver connection, commit, and return the first column of its first row (None without a row).

    For the hottest single-statement writes only (a chat message): the Connection and Session layers cost
    more than such a statement itself. Errors come out as SQLAlchemy's (`OperationalError` for a locked or
    unreachable database); a connection the database dropped is discarded, not given back to the pool.
    SQLAlchemy's statement events and echo logging do not see it.
    """
    prepared = _prepared(statement, engine.dialect)
    values = {name: prepared.convert[name](value) if name in prepared.convert else value
              for name, value in params.items()}
    arguments: Any = tuple(values[name] for name in prepared.order) if prepared.order is not None else values
    driver_error = engine.dialect.loaded_dbapi.Error
    try:
        connection = engine.raw_connection()
    except driver_error as error:  # the pool hands out the driver's own errors (e.g. the database is down)
        raise DBAPIError.instance(None, None, error, driver_error) from error
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(prepared.sql, arguments)
            row = cursor.fetchone()
        finally:
            cursor.close()
        connection.commit()
    except driver_error as error:
        if engine.dialect.is_disconnect(error, connection.dbapi_connection, None):
            connection.invalidate(error)
        else:
            with contextlib.suppress(driver_error):
                connection.rollback()
        raise DBAPIError.instance(prepared.sql, arguments, error, driver_error) from error
    finally:
        connection.close()
    return row[0] if row is not None else None
