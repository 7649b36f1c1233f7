"""Declarative base with a naming convention, small column helpers, and a lean path for the hottest write."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, scoped_session
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


PING_AFTER_IDLE_SECONDS = 1.0


def ping_after_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check a pooled connection at checkout only if it sat unused for `idle_seconds` (database servers).

    SQLAlchemy's `pool_pre_ping` asks the database on every checkout: a round trip more for each socket event,
    three of the fourteen of a reconnecting client. A connection given back moments ago is alive; one that sat
    idle (across a database restart or failover, or a firewall's idle cut) is asked first, and if it is dead
    the pool replaces it (SQLAlchemy's documented `DisconnectionError` from a checkout event). If the
    database went away within the last `idle_seconds`, the first use of such a connection fails as any
    statement during an outage does (an error ack, a 503), and SQLAlchemy then drops the pool's connections.
    """

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return  # just opened, or in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)  # outside a transaction (autocommit), as pre-ping does
        except Exception as error:  # noqa: BLE001 - any failure: the pool opens a new connection
            raise DisconnectionError(f"pooled connection dead after {time.monotonic() - returned_at:.0f} s idle") \
                from error


def reads_only(session: Any) -> None:
    """Let `session`'s coming statements run each on its own (autocommit) instead of in a transaction.

    For socket events that only read (connect, join, history): psycopg2 sends BEGIN, then each statement, then
    COMMIT or ROLLBACK, each a round trip; with autocommit only the statements remain. Each statement sees
    the data committed when it starts, as in PostgreSQL's READ COMMITTED transactions. The driver's own
    `autocommit` switch is used, and switched back when the connection returns to the pool: SQLAlchemy's
    isolation level "AUTOCOMMIT" costs a round trip of its own with psycopg2 (a SET when the connection
    comes back). SQLite has no round trips to save and is left as it is; so is a session already in a
    transaction. Call it before the session's first statement.
    """
    if isinstance(session, scoped_session):
        session = session()
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return
    connection = session.connection()
    engine = connection.engine
    if not event.contains(engine, "checkin", _end_reads_only):
        event.listen(engine, "checkin", _end_reads_only)
    pooled = connection.connection
    driver = pooled.dbapi_connection
    if driver is None or driver.info.transaction_status != 0:  # 0: idle, no transaction open (psycopg 2 and 3)
        return
    driver.autocommit = True
    pooled.info["reads_only"] = True


def _end_reads_only(dbapi_connection: Any, record: Any) -> None:
    """Back in the pool: transactions again for whoever takes the connection next."""
    if record is not None and record.info.pop("reads_only", False) and dbapi_connection is not None:
        dbapi_connection.autocommit = False


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
