"""Flask defaults, the secret key file, and options derived from the settings (driver, engine, Redis)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


class Config:
    """Flask's and its extensions' own keys; the `CONFERENCE_*` settings are in `conference.settings`."""

    BABEL_DEFAULT_LOCALE = "de"
    BABEL_DEFAULT_TIMEZONE = "Europe/Berlin"
    LANGUAGES = ("de", "en")
    # Flask's MAX_CONTENT_LENGTH is set from MAX_FORM_BYTES; upload views raise it per request once the caller
    # may upload (`core.security.accept_upload`).
    MAX_FORM_MEMORY_SIZE = 500 * 1024
    MAX_FORM_PARTS = 100
    # scrypt with werkzeug's default cost; tests may lower the cost, never the algorithm
    PASSWORD_HASH_METHOD = "scrypt"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "conference_session"
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = 14 * 24 * 3600
    WTF_CSRF_TIME_LIMIT = None  # token valid for the session's lifetime
    WTF_CSRF_CHECK_DEFAULT = False  # checked in `conference.core.security.check_csrf`


def ensure_secret_key(instance_path: Path) -> str:
    """Return the instance's secret key, creating it once with restrictive permissions."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if key:
            return key
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def cooperative_database_url(url: str, async_mode: str) -> str:
    """Pick a PostgreSQL driver that yields to the event loop instead of blocking it.

    psycopg 3 cooperates with gevent by itself (3.1.14 and newer) but not with eventlet; psycopg2 with
    psycogreen's wait callback cooperates with both. So under eventlet every PostgreSQL URL uses psycopg2.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        return url
    if async_mode == "eventlet" or scheme == "postgresql":
        return f"postgresql+psycopg2://{rest}"
    return url


def redis_options() -> dict[str, Any]:
    """Redis client settings for request paths: fail within a second, no hidden retries with back-off.

    A stopped Redis must not hold up a chat message: callers fall back (rate limits, presence) and retry
    on their own schedule.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0}


def redis_client(url: str, *, listening: bool = False) -> Any:
    """The one way this application makes a Redis client: `redis_options()`; `listening`: a subscriber that
    waits for messages without a read timeout (a stopped Redis closes its connection) and keeps it alive."""
    import redis

    options = redis_options()
    if listening:
        options.update(socket_timeout=None, socket_keepalive=True)
    return redis.Redis.from_url(url, **options)


def sqlalchemy_settings(database_url: str) -> dict[str, Any]:
    """Engine options per backend: pre-ping and pooling for servers, a longer timeout for SQLite.

    A worker's green threads ask for connections by the thousand in a reconnect storm. Overflow connections
    (beyond `pool_size`) are closed when returned, so under such load each checkout past the pool opened a
    new PostgreSQL backend: in the 2,000-client join storm that churn doubled PostgreSQL's CPU (8.6 s against
    4.2 s for the storm). So all 30 connections a worker may hold stay open, and a caller beyond them waits.
    A connection is checked at checkout only after a second unused (`core.db.ping_after_idle`) unless
    `pool_pre_ping` is set."""
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": 5, "check_same_thread": False}}
    return {"pool_pre_ping": False, "pool_size": 30, "max_overflow": 0, "pool_recycle": 1800}
