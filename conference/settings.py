"""Every `CONFERENCE_*` setting, parsed once with its type, range and default; code reads `get_settings().x`.

One table (the fields of `Settings`) names each setting, its type and its default; the README's settings
table lists the same names (tests/core/test_settings.py compares them). A value from the environment is a
string and is parsed here; a value given to `create_app(config)` may already have its type. Anything that is
not a value of the setting's type and range stops the start with one line naming the variable and what it
accepts (`SettingError`).

This module imports only the standard library: `conference.entry` checks the environment with it before the
async server patches anything.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "CONFERENCE_"
ASYNC_MODES = ("eventlet", "gevent", "threading")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")  # empty: the variable set to nothing, e.g. `X= cmd`
DAY = 24 * 3600


class SettingError(ValueError):
    """A setting's value is not one it accepts; the message names the variable and the accepted values."""


def _setting(kind: str, default: Any, *, low: float | None = None, high: float | None = None,
             choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"kind": kind, "low": low, "high": high, "choices": choices})


def _text(default: str | None = None) -> Any:
    return _setting("text", default)


def _flag(default: bool) -> Any:
    return _setting("bool", default)


def _whole(default: int, low: int, high: int) -> Any:
    return _setting("int", default, low=low, high=high)


def _seconds(default: float, low: float = 0, high: float = 10 * DAY) -> Any:
    return _setting("float", default, low=low, high=high)


def _rate(count: int, seconds: int) -> Any:
    return _setting("rate", (count, seconds))


@dataclass(frozen=True)
class Settings:
    """The parsed settings; attribute `x` is the environment variable `CONFERENCE_X`."""

    # where things live
    instance_path: str | None = _text()  # default: ./instance (read before the app exists)
    database_url: str | None = _text()  # default: SQLite file in the instance folder
    sqlalchemy_engine_options: dict[str, Any] = _setting("json", None)  # JSON object, e.g. {"pool_size": 20}
    secret_key: str | None = _text()  # default: generated once, kept in the instance folder
    upload_dir: str | None = _text()  # default: <instance>/uploads
    cache_dir: str | None = _text()  # default: <instance>/cache (slide archives; no backup)
    # serving
    message_queue: str | None = _text()  # unset: one process
    async_mode: str = _setting("choice", "eventlet", choices=ASYNC_MODES)
    workers: int = _whole(1, 1, 64)  # `conference run --workers`
    external_url: str | None = _text()
    development: bool = _flag(False)
    trusted_proxy_count: int = _whole(0, 0, 10)
    # Seconds a connection may make no progress before the server closes it (0: never); longer than the
    # proxy's idle keep-alive (shipped nginx: 30 s).
    socket_timeout: float = _seconds(60.0)
    heap_freeze_interval: float = _seconds(1.0, 0, 3600)  # 0: CPython's own collection schedule
    heap_reclaim_every: float = _seconds(600.0, 0)  # only when idle (serving/heap.py); 0: never
    loop_probe: bool = _flag(True)
    loop_probe_interval_ms: float = _seconds(10.0, 1, 60_000)
    loop_probe_stall_ms: float = _seconds(20.0, 0, 3_600_000)
    loop_probe_log_ms: float = _seconds(100.0, 0, 3_600_000)
    loop_probe_file: str | None = _text()
    loop_probe_stacks: bool = _flag(False)
    # bodies and uploads
    max_form_bytes: int = _whole(1024 * 1024, 1024, 2**31)
    presentation_max_bytes: int = _whole(100 * 1024 * 1024, 1, 2**40)
    presentation_user_quota_bytes: int = _whole(1024 * 1024 * 1024, 1, 2**44)
    archive_wait_seconds: float = _seconds(15.0, 0, 3600)
    schedule_import_max_bytes: int = _whole(5 * 1024 * 1024, 1024, 2**31)
    # accounts
    password_min_length: int = _whole(10, 1, 128)
    registration_code_min_length: int = _whole(10, 4, 128)
    address_link_max_age: int = _whole(2 * DAY, 60, 366 * DAY)
    password_reset_max_age: int = _whole(3600, 60, 30 * DAY)
    # rate limits (count, seconds); see docs/security.md
    login_failure_limit_account: tuple[int, int] = _rate(10, 900)
    login_failure_limit_address: tuple[int, int] = _rate(100, 900)
    registration_limit: tuple[int, int] = _rate(20, 3600)
    event_code_failure_limit_account: tuple[int, int] = _rate(10, 900)
    event_code_failure_limit_address: tuple[int, int] = _rate(50, 900)
    token_issue_limit_account: tuple[int, int] = _rate(20, 3600)
    token_issue_limit_address: tuple[int, int] = _rate(300, 3600)
    mail_request_limit_account: tuple[int, int] = _rate(3, 3600)
    mail_request_limit_address: tuple[int, int] = _rate(20, 3600)
    feedback_limit: tuple[int, int] = _rate(30, 3600)  # session ratings and comments saved per account
    # mail
    mail_server: str | None = _text()  # unset: mails stay in the outbox page
    mail_port: int = _whole(25, 1, 65535)
    mail_use_tls: bool = _flag(False)
    mail_use_ssl: bool = _flag(False)
    mail_username: str | None = _text()
    mail_password: str | None = _text()
    mail_tls_ca_file: str | None = _text()
    mail_from: str = _setting("text", "konferenz@localhost")
    mail_timeout: float = _seconds(15, 0.1, 3600)
    mail_retry_first: float = _seconds(60, 0.1)
    mail_give_up_after: float = _seconds(DAY, 1, 366 * DAY)
    mail_poll_interval: float = _seconds(10, 0.1, 3600)
    mail_sending_lease: float = _seconds(600, 1)
    mail_reminder_interval: float = _seconds(60, 0, DAY)  # 0: off
    announcement_mail_limit: int = _whole(3, 0, 1000)
    # live layer
    live_direct_writes: bool = _flag(True)
    live_max_connections_per_user: int = _whole(8, 1, 1000)
    live_chat_rate_limit: tuple[int, int] = _rate(20, 10)
    live_action_rate_limit: tuple[int, int] = _rate(60, 10)
    live_join_rate_limit: tuple[int, int] = _rate(60, 10)
    live_aggregate_interval: float = _seconds(1.0, 0.01, 3600)
    live_large_room: int = _whole(100, 1, 10_000_000)
    live_group_window: float = _seconds(0.01, 0, 10)
    live_group_window_max: float = _seconds(0.1, 0, 10)
    live_group_settle: float = _seconds(0.25, 0, 60)
    live_cache_seconds: float = _seconds(2.0, 0, 3600)
    live_payload_cache: int = _whole(20_000, 0, 10_000_000)
    live_worker_ttl: float = _seconds(15.0, 1, 3600)
    # retention, HTTP caching, CORS
    retention_interval: float = _seconds(3600, 0, 7 * DAY)  # 0: only `conference live purge`
    public_max_age: int = _whole(60, 0, 366 * DAY)
    cors_origins: str | None = _text()  # origins, separated by spaces or commas (core/cors.py checks them)
    # attendance (conference/attendance): presence sampled every N seconds (0: not recorded); dashboard polling
    attendance_sample_seconds: float = _seconds(10, 0, 3600)
    attendance_poll_seconds: float = _seconds(30, 1, 3600)
    # background jobs (core/jobs.py)
    job_workers: int = _whole(2, 1, 64)
    job_memory_mb: int = _whole(512, 64, 1024 * 1024)
    job_timeout: float = _seconds(60, 1, DAY)
    job_retry_first: float = _seconds(30, 0.1, DAY)
    job_poll_interval: float = _seconds(5, 0.05, 3600)
    job_lease: float = _seconds(900, 1, 7 * DAY)
    # operations: metrics, logs, backups
    metrics: bool = _flag(True)
    metrics_token: str | None = _text()
    log_format: str = _setting("choice", "text", choices=("text", "json"))
    log_level: str = _setting("choice", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    backup_passphrase: str | None = _text()  # read by `conference backup`/`restore` (backup_cli.py)

    def config_items(self) -> dict[str, Any]:
        """The values under their config names (`ASYNC_MODE`), as Flask extensions and old readers expect."""
        return {f.name.upper(): getattr(self, f.name) for f in dataclasses.fields(self)}


SETTING_FIELDS = {f.name.upper(): f for f in dataclasses.fields(Settings)}
NAMES = tuple(SETTING_FIELDS)  # config names, e.g. "LIVE_DIRECT_WRITES"


def parse_value(name: str, value: Any) -> Any:
    """The typed value of setting `name` (config name) from `value` (a string or already typed)."""
    meta = SETTING_FIELDS[name].metadata
    kind, variable = meta["kind"], PREFIX + name
    if kind == "text":
        return None if value is None or value == "" else str(value)
    if kind == "choice":
        if value not in meta["choices"]:
            raise SettingError(f"{variable} must be one of {', '.join(meta['choices'])}, not {value!r}")
        return value
    if kind == "bool":
        return parse_bool(variable, value)
    if kind == "rate":
        return parse_rate_limit(value, variable)
    if kind == "json":
        return _json_object(variable, value)
    return _number(variable, value, whole=kind == "int", low=meta["low"], high=meta["high"])


def parse_bool(variable: str, value: Any) -> bool:
    """`true/false`, `1/0`, `yes/no` (any case; also `on/off`, and empty for false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    lowered = str(value).strip().lower() if isinstance(value, str) else None
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise SettingError(f"{variable} must be true or false (also 1/0, yes/no; any case), not {value!r}")


def parse_rate_limit(value: Any, variable: str) -> tuple[int, int]:
    """(count, seconds) from "count/seconds" or a pair; anything else stops the start with the variable."""
    parts = value.split("/") if isinstance(value, str) else value
    try:
        count, seconds = (int(part) for part in parts)
    except (TypeError, ValueError):
        raise SettingError(f"{variable} must be 'count/seconds', e.g. 10/900, not {value!r}") from None
    if count < 1 or seconds < 1:
        raise SettingError(f"{variable} needs a count and a window of at least 1 ('count/seconds'), "
                           f"not {value!r}")
    return count, seconds


def _json_object(variable: str, value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise SettingError(f"{variable} must be a JSON object, e.g. {{\"pool_size\": 20}}")
    return value


def _number(variable: str, value: Any, *, whole: bool, low: float, high: float) -> int | float:
    kind = "a whole number" if whole else "a number"
    shown = f"{low:g} to {high:g}"
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            number: float = int(value.strip()) if whole else float(value.strip())
        elif whole and isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, (int, float)) and not (whole and isinstance(value, float)):
            number = value
        else:
            raise ValueError
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError
    except (TypeError, ValueError):
        raise SettingError(f"{variable} must be {kind} from {shown}, not {value!r}") from None
    return number


def load_settings(source: Mapping[str, Any]) -> Settings:
    """Parse every setting present in `source` (config names); the others keep their defaults."""
    values = {f.name: parse_value(name, source[name]) for name, f in SETTING_FIELDS.items() if name in source}
    if "sqlalchemy_engine_options" not in values:
        values["sqlalchemy_engine_options"] = {}
    return Settings(**values)


def settings_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`CONFERENCE_*` variables by config name: settings parsed (a bad value raises `SettingError`), other
    names (Flask's own keys, e.g. `CONFERENCE_SESSION_COOKIE_SECURE`) passed on as strings."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith(PREFIX):
            name = key.removeprefix(PREFIX)
            found[name] = parse_value(name, value) if name in SETTING_FIELDS else value
    return found


def environment_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings the environment gives (defaults for the rest): checked before anything is started."""
    return load_settings(settings_from_environment(environ))


def get_settings(app: Any = None) -> Settings:
    """The application's parsed settings (the current app's by default)."""
    if app is None:
        from flask import current_app

        app = current_app
    return settings_of(app.config)


def settings_of(config: Mapping[str, Any]) -> Settings:
    """The parsed settings of a config mapping: kept by the application's config, parsed for any other."""
    cached = getattr(config, "settings", None)
    return cached if isinstance(cached, Settings) else load_settings(config)
