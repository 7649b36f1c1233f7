"""Settings: defaults here, overridden by `CONFERENCE_*` environment variables, then by `create_app(config)`."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

ASYNC_MODES = ("eventlet", "gevent", "threading")
RATE_LIMIT_SETTINGS = (
    "LOGIN_FAILURE_LIMIT_ACCOUNT", "LOGIN_FAILURE_LIMIT_ADDRESS", "REGISTRATION_LIMIT",
    "EVENT_CODE_FAILURE_LIMIT_ACCOUNT", "EVENT_CODE_FAILURE_LIMIT_ADDRESS", "TOKEN_ISSUE_LIMIT_ACCOUNT",
    "TOKEN_ISSUE_LIMIT_ADDRESS", "MAIL_REQUEST_LIMIT_ACCOUNT", "MAIL_REQUEST_LIMIT_ADDRESS", "FEEDBACK_LIMIT",
)


class Config:
    """Defaults. Anything here can be set as `CONFERENCE_<NAME>` in the environment."""

    DATABASE_URL: str | None = None  # default: SQLite file in the instance folder
    SECRET_KEY: str | None = None  # default: generated once, kept in the instance folder
    UPLOAD_DIR: str | None = None  # default: <instance>/uploads
    CACHE_DIR: str | None = None  # default: <instance>/cache (built on demand, e.g. slide archives; no backup)
    MESSAGE_QUEUE: str | None = None  # unset: one process
    ASYNC_MODE = "eventlet"
    # Seconds a connection may make no progress (a client that stops reading a download, or sends nothing)
    # before the server closes it (0: never); longer than the proxy's idle keep-alive (shipped nginx: 30 s).
    SOCKET_TIMEOUT = 60.0
    ARCHIVE_WAIT_SECONDS = 15.0  # a request for the slide archive waits this long for its build, then 503
    EXTERNAL_URL: str | None = None  # e.g. https://konferenz.example.org; used in mails and Origin checks
    # A laptop demo or development: `conference run` starts without EXTERNAL_URL and mail links point at the
    # address it serves on. Never in production (links in mails would point at that local address).
    DEVELOPMENT = False
    BABEL_DEFAULT_LOCALE = "de"
    BABEL_DEFAULT_TIMEZONE = "Europe/Berlin"
    LANGUAGES = ("de", "en")
    # Body limit of every request but the uploads (JSON and forms). Flask's MAX_CONTENT_LENGTH is set from
    # it; upload views raise it per request once the caller may upload (`core.security.accept_upload`).
    MAX_FORM_BYTES = 1024 * 1024
    MAX_FORM_MEMORY_SIZE = 500 * 1024
    MAX_FORM_PARTS = 100
    SCHEDULE_IMPORT_MAX_BYTES = 5 * 1024 * 1024  # the largest schedule.xml an organiser may import
    PASSWORD_MIN_LENGTH = 10
    # scrypt with werkzeug's default cost; tests may lower the cost, never the algorithm
    PASSWORD_HASH_METHOD = "scrypt"
    # Rate limits as (count, seconds); in the environment "count/seconds", e.g. CONFERENCE_REGISTRATION_LIMIT=50/3600.
    # Failure limits count only failed tries (wrong password, wrong code): see docs/security.md.
    LOGIN_FAILURE_LIMIT_ACCOUNT = (10, 900)  # then the account refuses every login, the right password too
    LOGIN_FAILURE_LIMIT_ADDRESS = (100, 900)  # then the address gets no second guess at any account
    REGISTRATION_LIMIT = (20, 3600)  # registration attempts (complete forms) per client address
    EVENT_CODE_FAILURE_LIMIT_ACCOUNT = (10, 900)  # wrong registration codes per account (all events)
    EVENT_CODE_FAILURE_LIMIT_ADDRESS = (50, 900)  # wrong registration codes per client address (all events)
    TOKEN_ISSUE_LIMIT_ACCOUNT = (20, 3600)  # API tokens issued per account
    TOKEN_ISSUE_LIMIT_ADDRESS = (300, 3600)  # API tokens issued per client address
    MAIL_REQUEST_LIMIT_ACCOUNT = (3, 3600)  # password-reset and verification mails per e-mail address
    MAIL_REQUEST_LIMIT_ADDRESS = (20, 3600)  # password-reset and verification mails per client address
    FEEDBACK_LIMIT = (30, 3600)  # session ratings and comments saved per account (all sessions)
    REGISTRATION_CODE_MIN_LENGTH = 10  # organiser-set event codes; generated ones have 12 random characters
    ADDRESS_LINK_MAX_AGE = 48 * 3600  # seconds a mailed confirmation / new-password link stays valid
    PASSWORD_RESET_MAX_AGE = 3600  # seconds a "forgot password" link stays valid
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "conference_session"
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = 14 * 24 * 3600
    WTF_CSRF_TIME_LIMIT = None  # token valid for the session's lifetime
    WTF_CSRF_CHECK_DEFAULT = False  # checked in `conference.core.security.check_csrf`
    TRUSTED_PROXY_COUNT = 0  # set to 1 behind nginx so X-Forwarded-* are believed
    MAIL_SERVER: str | None = None  # unset: mails stay in the outbox page (nothing is sent)
    MAIL_PORT = 25
    MAIL_USE_TLS = False  # STARTTLS on a plain connection (port 587)
    MAIL_USE_SSL = False  # TLS from the first byte (port 465)
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_TLS_CA_FILE: str | None = None  # trust this CA bundle for the server's certificate (a private CA)
    MAIL_FROM = "konferenz@localhost"
    MAIL_TIMEOUT = 15  # seconds per SMTP answer
    MAIL_RETRY_FIRST = 60  # seconds to the first retry; each further retry waits twice as long
    MAIL_GIVE_UP_AFTER = 24 * 3600  # a mail not delivered this long after it was queued is marked failed
    MAIL_POLL_INTERVAL = 10  # seconds between looks at the queue (a commit in this process wakes it at once)
    MAIL_SENDING_LEASE = 600  # a mail claimed this long ago by a sender that died is queued again
    MAIL_REMINDER_INTERVAL = 60  # seconds between passes that queue session reminders and slides notices; 0: off
    ANNOUNCEMENT_MAIL_LIMIT = 3  # announcement mails per event and hour
    RETENTION_INTERVAL = 3600  # seconds between the server's retention passes (0: only `conference live purge`)
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}


def settings_from_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """Read `CONFERENCE_*` variables; values that look like JSON numbers stay strings except known ints."""
    environ = environ if environ is not None else os.environ
    ints = {"MAX_CONTENT_LENGTH", "MAX_FORM_BYTES", "PASSWORD_MIN_LENGTH", "TRUSTED_PROXY_COUNT", "MAIL_PORT",
            "MAIL_TIMEOUT", "MAIL_RETRY_FIRST", "MAIL_GIVE_UP_AFTER", "MAIL_POLL_INTERVAL", "MAIL_SENDING_LEASE",
            "MAIL_REMINDER_INTERVAL", "ANNOUNCEMENT_MAIL_LIMIT", "SCHEDULE_IMPORT_MAX_BYTES", "RETENTION_INTERVAL",
            "REGISTRATION_CODE_MIN_LENGTH", "ADDRESS_LINK_MAX_AGE",
            "PASSWORD_RESET_MAX_AGE"}
    bools = {"DEVELOPMENT", "MAIL_USE_TLS", "MAIL_USE_SSL", "METRICS"}
    json_objects = {"SQLALCHEMY_ENGINE_OPTIONS"}  # e.g. '{"pool_size": 20, "max_overflow": 10}'
    settings: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("CONFERENCE_"):
            continue
        name = key.removeprefix("CONFERENCE_")
        if name in json_objects:
            parsed = json.loads(value)
            if not isinstance(parsed, dict):
                raise ValueError(f"{key} must be a JSON object")
            settings[name] = parsed
        elif name in RATE_LIMIT_SETTINGS:
            settings[name] = parse_rate_limit(value, key)
        elif name in bools:
            settings[name] = parse_bool(key, value)
        else:
            settings[name] = int(value) if name in ints else value
    return settings


def parse_rate_limit(value: Any, name: str) -> tuple[int, int]:
    """(count, seconds) from "count/seconds" or a pair; anything else stops the start with the setting's name."""
    parts = value.split("/") if isinstance(value, str) else value
    try:
        count, seconds = (int(part) for part in parts)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 'count/seconds', e.g. 10/900, not {value!r}") from None
    if count < 1 or seconds < 1:
        raise ValueError(f"{name} needs a count and a window of at least 1, not {value!r}")
    return count, seconds


def parse_bool(key: str, value: str) -> bool:
    """`1/true/yes/on` or `0/false/no/off` (or empty); anything else is a mistake worth stopping for."""
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"", "0", "false", "no", "off"}:
        return False
    raise ValueError(f"{key} must be 1 or 0 (true/false), not {value!r}")


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


def sqlalchemy_settings(database_url: str) -> dict[str, Any]:
    """Engine options per backend: pre-ping and pooling for servers, a longer timeout for SQLite."""
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": 5, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20, "pool_recycle": 1800}
