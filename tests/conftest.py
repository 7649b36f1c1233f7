"""Shared fixtures: an app on a fresh SQLite file per test, clients, and the factories in tests/fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from conference import create_app
from conference.extensions import db
from tests.support.fast_apps import share_template_bytecode, share_url_builders

pytest_plugins = ["tests.support.services", "tests.fixtures.accounts", "tests.fixtures.agenda", "tests.fixtures.presentations", "tests.fixtures.live", "tests.fixtures.smtp"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = PROJECT_ROOT.parent / "shared"
STRICT_SERVICES = os.environ.get("CONFERENCE_TEST_STRICT") == "1" or os.environ.get("CI") == "true"


def settings_for_tests(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "ASYNC_MODE": "threading",
        "MESSAGE_QUEUE": None,
        # The same algorithm as production with a lower work factor, so hundreds of test logins stay fast.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "EXTERNAL_URL": "http://localhost",
        "SERVER_NAME": None,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def app_settings(tmp_path: Path) -> dict[str, Any]:
    """Override in a test module to change settings for `app`."""
    return settings_for_tests(tmp_path)


class IsolatedClient(FlaskClient):
    """Each request gets its own application context (own `g`, own database session), as in production.

    Without this, requests would reuse the test's long-lived app context and share `g` and the session.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


# Templates and URL builders compiled once per test process, not once per test's app (tests/support/fast_apps).
share_template_bytecode()
share_url_builders()

_SCHEMA_TEMPLATE: dict[str, Path] = {}


def _create_schema() -> None:
    """`db.create_all()` on an empty database; on a new SQLite file, a copy of the first one made this run
    (a file copy instead of sixty CREATE statements: about 30 ms less for each of the suite's tests)."""
    url = db.engine.url
    path = Path(url.database) if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
        else None
    template = _SCHEMA_TEMPLATE.get("sqlite")
    if path is None or path.exists():
        db.create_all()
        return
    if template is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
        return
    db.create_all()
    db.session.remove()
    db.engine.dispose()  # the last connection closes: the write-ahead log is folded into the file
    folder = Path(tempfile.mkdtemp(prefix="conference-schema-"))
    shutil.copyfile(path, folder / "schema.sqlite3")
    _SCHEMA_TEMPLATE["sqlite"] = folder / "schema.sqlite3"


@pytest.fixture
def app(app_settings: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(app_settings)
    application.test_client_class = IsolatedClient
    # Tests read English unless they ask for German (the platform's own default is German).
    with application.app_context():
        _create_schema()
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the translation catalogues (.mo files are build products, not committed)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (PROJECT_ROOT / "conference" / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source, mo.open("wb") as target:
                write_mo(target, read_po(source))


def require_service(name: str, available: bool, reason: str) -> None:
    """Skip when a local service is missing, except under CI where a missing service is a failure."""
    if available:
        return
    if STRICT_SERVICES:
        pytest.fail(f"{name} is required under CI but not available: {reason}")
    pytest.skip(f"{name} not available: {reason}")
