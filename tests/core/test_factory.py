"""The app factory and its settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from itsdangerous import BadSignature
from sqlalchemy import text

from conference import create_app
from conference.extensions import db
from conference.settings import settings_from_environment


def test_secret_key_generated_once_and_private(tmp_path: Path) -> None:
    first = create_app({"INSTANCE_PATH": str(tmp_path), "ASYNC_MODE": "threading"})
    second = create_app({"INSTANCE_PATH": str(tmp_path), "ASYNC_MODE": "threading"})
    key_file = tmp_path / "secret_key"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert len(first.config["SECRET_KEY"]) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_secret_keys_differ_between_instances(tmp_path: Path) -> None:
    one = create_app({"INSTANCE_PATH": str(tmp_path / "a"), "ASYNC_MODE": "threading"})
    two = create_app({"INSTANCE_PATH": str(tmp_path / "b"), "ASYNC_MODE": "threading"})
    assert one.config["SECRET_KEY"] != two.config["SECRET_KEY"]


def test_default_database_is_sqlite_in_instance_folder_with_wal(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "ASYNC_MODE": "threading"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'conference.sqlite3'}"
    assert app.config["UPLOAD_DIR"] == str(tmp_path / "uploads")
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 5000
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_environment_variables_with_prefix_override_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFERENCE_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.setenv("CONFERENCE_UPLOAD_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("CONFERENCE_ASYNC_MODE", "threading")
    monkeypatch.setenv("CONFERENCE_EXTERNAL_URL", "https://konferenz.example.org")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'other.db'}"
    assert app.config["UPLOAD_DIR"] == str(tmp_path / "files")
    assert (tmp_path / "files").is_dir()
    assert app.config["EXTERNAL_URL"] == "https://konferenz.example.org"


def test_settings_from_environment_reads_only_prefixed_names() -> None:
    settings = settings_from_environment({"CONFERENCE_MESSAGE_QUEUE": "redis://x", "OTHER": "1",
                                          "CONFERENCE_MAX_CONTENT_LENGTH": "42"})
    assert settings == {"MESSAGE_QUEUE": "redis://x", "MAX_CONTENT_LENGTH": "42"}  # not a setting: passed on


def test_unknown_async_mode_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ASYNC_MODE"):
        create_app({"INSTANCE_PATH": str(tmp_path), "ASYNC_MODE": "tornado"})


def test_default_async_mode_is_eventlet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFERENCE_ASYNC_MODE", raising=False)
    from conference.settings import Settings

    assert Settings().async_mode == "eventlet"
    assert os.environ.get("CONFERENCE_ASYNC_MODE") is None


def test_security_headers_on_pages_and_api(client) -> None:
    for path in ("/", "/login", "/api/v1/events", "/does-not-exist", "/static/css/main.css"):
        response = client.get(path)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        response.close()


def test_error_pages_in_both_languages(client) -> None:
    german = client.get("/nothing-here", headers={"Accept-Language": "de"})
    english = client.get("/nothing-here", headers={"Accept-Language": "en"})
    assert german.status_code == english.status_code == 404
    assert "Seite nicht gefunden" in german.get_data(as_text=True)
    assert "Page not found" in english.get_data(as_text=True)


def test_api_errors_are_json(client) -> None:
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.json == {"ok": False, "error": "not_found", "message": "There is nothing at this address."}


def test_language_switch_is_a_post_with_csrf(client) -> None:
    from tests.fixtures.accounts import csrf_token

    assert client.get("/language").status_code == 405
    assert client.post("/language", data={"locale": "en"}).status_code == 400
    token = csrf_token(client, "/login")
    response = client.post("/language", data={"locale": "en", "next": "/login", "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "Log in" in client.get("/login").get_data(as_text=True)
    client.post("/language", data={"locale": "de", "next": "/login", "csrf_token": token})
    assert "Anmelden" in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize(("url", "mode", "expected"), [
    ("postgresql+psycopg://u@h/db", "eventlet", "postgresql+psycopg2://u@h/db"),
    ("postgresql://u@h/db", "eventlet", "postgresql+psycopg2://u@h/db"),
    ("postgresql+psycopg://u@h/db", "gevent", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h/db", "gevent", "postgresql+psycopg2://u@h/db"),
    ("postgresql+psycopg2://u@h/db", "gevent", "postgresql+psycopg2://u@h/db"),
    ("sqlite:////tmp/x.db", "eventlet", "sqlite:////tmp/x.db"),
])
def test_postgres_driver_cooperates_with_async_server(url: str, mode: str, expected: str) -> None:
    from conference.config import cooperative_database_url

    assert cooperative_database_url(url, mode) == expected


def test_session_serializer_is_reused_and_follows_key_rotation(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "old-key", "ASYNC_MODE": "threading",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    interface = app.session_interface
    signed_with_old = interface.get_signing_serializer(app).dumps({"user": 1})
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)
    app.secret_key = app.config["SECRET_KEY"] = "new-key"
    app.config["SECRET_KEY_FALLBACKS"] = ["old-key"]
    rotated = interface.get_signing_serializer(app)
    assert rotated.loads(signed_with_old) == {"user": 1}  # old cookies stay valid through the fallback
    assert rotated.dumps({"user": 1}) != signed_with_old
    app.config["SECRET_KEY_FALLBACKS"] = []
    with pytest.raises(BadSignature):
        interface.get_signing_serializer(app).loads(signed_with_old)


def test_socket_packets_look_for_bytes_only_in_the_event_arguments(app) -> None:
    from conference.extensions import socketio
    from conference.factory import JsonPacket

    assert socketio.server.packet_class is JsonPacket
    assert JsonPacket.data_is_binary(["chat:message", {"text": "x", "author": {"id": 1}}]) is False
    assert JsonPacket.data_is_binary(["file", b"\x00"]) is True and JsonPacket.data_is_binary(b"\x00") is True
    from socketio.packet import EVENT

    assert JsonPacket(EVENT, data=["chat:message", {"id": 1}]).encode() == '2["chat:message",{"id":1}]'


def test_socket_packets_with_deep_or_huge_json_are_refused(app) -> None:
    """The packet class refuses them before the JSON parser recurses; `serving.limits.close_on_refused_packets` then closes the connection."""
    import pytest

    from conference.factory import JsonPacket

    with pytest.raises(JsonPacket.Refused):
        JsonPacket().decode('2["chat:send",' + "[" * 2000 + "]" * 2000 + "]")
    with pytest.raises(JsonPacket.Refused):
        JsonPacket().decode('2["chat:send",[' + ",".join(["[]"] * 20_000) + "]]")
    normal = JsonPacket()
    normal.decode('2["chat:send",{"room":"lobby:x","text":"[a] [b] {c}","client_id":"c-1"}]')
    assert normal.data == ["chat:send", {"room": "lobby:x", "text": "[a] [b] {c}", "client_id": "c-1"}]
