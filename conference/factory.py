"""The application factory: config -> extensions -> blueprints -> socket handlers -> CLI -> error handlers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Config as FlaskConfig
from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from socketio import packet as socketio_packet
from werkzeug.middleware.proxy_fix import ProxyFix

from conference.config import Config, cooperative_database_url, ensure_secret_key, sqlalchemy_settings
from conference.core.security import MAX_JSON_DEPTH, check_json_shape
from conference.paths import data_dir, default_instance_path, translations_dir
from conference.settings import SETTING_FIELDS, Settings, get_settings, load_settings, settings_from_environment

SOCKET_MAX_MESSAGE_BYTES = 64 * 1024  # a chat frame is small; the library default of 1 MB invites abuse


class SettingsConfig(FlaskConfig):
    """`app.config` that keeps the parsed `Settings`: a change to a setting's key (a test, a CLI command) is
    parsed again at the next `settings` read, so the typed attributes never disagree with the config."""

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self)
            for name, value in self._settings.config_items().items():
                dict.__setitem__(self, name, value)  # the typed value under the config name too
        return self._settings

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key in SETTING_FIELDS:
            self._settings = None

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        if key in SETTING_FIELDS:
            self._settings = None

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._settings = None


class ConferenceFlask(Flask):
    config_class = SettingsConfig


class RequestAwareSessionInterface(SecureCookieSessionInterface):
    """The session cookie is `Secure` whenever the request itself came over https (directly or via proxy).

    The signing serializer is built once per set of keys instead of on every request: Flask builds a new one
    each time (a third of the cost of a request context, which Flask-SocketIO pushes for every socket event).
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            self._serializers = {keys: serializer}  # a key rotation replaces the one cached serializer
        return serializer


class JsonPacket(socketio_packet.Packet):
    """Socket.IO packets of this application: JSON objects and lists, never bytes inside them.

    python-socketio walks every outgoing payload, every list item and dict value, to look for bytes (a join
    answer with 50 messages of history: hundreds of calls); that walk was 15% of the CPU of a reconnect
    storm. Only the event's own arguments are looked at here.

    Incoming binary data is refused: the protocol has none, and python-socketio keeps the attachments a
    binary packet announces (up to 10 digits of them) until they are complete or the client leaves.
    """

    class Refused(ValueError):
        """A packet the protocol does not have; `conference.serving.limits` closes the connection that sent it."""

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        if isinstance(data, list):
            return any(isinstance(item, (bytes, bytearray)) for item in data)
        return isinstance(data, (bytes, bytearray))

    def decode(self, encoded_packet: Any) -> int:
        if not isinstance(encoded_packet, str):
            raise self.Refused("binary message")
        if encoded_packet[:1] in (str(socketio_packet.BINARY_EVENT), str(socketio_packet.BINARY_ACK)):
            raise self.Refused("binary packet")
        # Deep nesting makes the JSON parser recurse (RecursionError, logged, no answer) and many tiny values
        # cost memory: the same bound as for HTTP bodies. Counting brackets first keeps it off the chat path
        # (a chat message has two; the full check costs ~20 us).
        if encoded_packet.count("[") + encoded_packet.count("{") > MAX_JSON_DEPTH \
                and check_json_shape(encoded_packet.encode()) is not None:
            raise self.Refused("JSON nested too deeply or with too many values")
        return int(super().decode(encoded_packet))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("CONFERENCE_INSTANCE_PATH") \
        or str(default_instance_path())
    app = ConferenceFlask(
        "conference",
        instance_path=str(Path(instance_path).resolve()),
        template_folder=str(data_dir("templates")),
        static_folder=str(data_dir("static")),
    )
    _configure(app, config or {})
    _install_id_converter(app)
    _init_extensions(app)
    _register_blueprints(app)
    _register_sockets(app)
    _register_cli(app)
    _register_template_helpers(app)
    from conference.core.logs import init_request_ids

    init_request_ids(app)
    from conference.core.errors import register_error_handlers

    register_error_handlers(app)
    return app


def _configure(app: Flask, overrides: dict[str, Any]) -> None:
    app.config.from_object(Config)
    app.config.update(settings_from_environment())
    app.config.update(overrides)
    settings = get_settings(app)  # every setting checked here
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not settings.secret_key:
        app.config["SECRET_KEY"] = ensure_secret_key(instance)
    url = cooperative_database_url(settings.database_url or f"sqlite:///{instance / 'conference.sqlite3'}",
                                   settings.async_mode)
    app.config["DATABASE_URL"] = url
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**sqlalchemy_settings(url), **settings.sqlalchemy_engine_options}
    upload_dir = Path(settings.upload_dir or instance / "uploads")
    upload_dir.mkdir(parents=True, exist_ok=True)
    app.config["UPLOAD_DIR"] = str(upload_dir)
    # One small limit for every body; a MAX_CONTENT_LENGTH from older settings (it was 100 MB, for all
    # routes) does not count: only the upload views take large bodies, after their permission checks.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_form_bytes
    if settings.trusted_proxy_count:
        proxies = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore
    app.session_interface = RequestAwareSessionInterface()


def _install_id_converter(app: Flask) -> None:
    """`<int:...>` in every route of this application is an id: ASCII digits within 1..2^63-1, else 404.

    Replacing werkzeug's own `int` (which takes "٣" as 3 and lets 23 digits through to the database) before
    any blueprint adds a rule means no route can use the old one; tests/security/test_ids.py checks the map.
    """
    from conference.core.ids import IdConverter

    app.url_map.converters["int"] = IdConverter


def _init_extensions(app: Flask) -> None:
    from conference import models  # noqa: F401  (every table known to Alembic and create_all)
    from conference.core.compression import init_compression
    from conference.core.cors import register_cors
    from conference.core.http_cache import register_http_cache
    from conference.core.i18n import select_locale
    from conference.core.ratelimit import init_rate_limits
    from conference.core.security import register_security
    from conference.extensions import babel, csrf, db, login_manager, migrate, socketio

    db.init_app(app)
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    if not app.config["DATABASE_URL"].startswith("sqlite") and not options.get("pool_pre_ping"):
        from conference.core.db import ping_after_idle

        with app.app_context():
            ping_after_idle(db.engine)
    migrate.init_app(app, db, directory=str(data_dir("migrations")), render_as_batch=True,
                     compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = None  # type: ignore[assignment]
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(translations_dir()))
    settings = get_settings(app)
    socketio.init_app(
        app,
        async_mode=settings.async_mode,
        message_queue=settings.message_queue,
        # The Origin rule belongs to cookie logins only (`conference.live.sockets._identify`): a token client on
        # another site (a dashboard, a bot in a browser extension) may connect, so Engine.IO refuses no Origin
        # before the CONNECT packet shows which credential comes. Its CORS answers never allow credentials: a
        # foreign page's polling carries no cookie, and a cookie that arrives with a foreign Origin is refused.
        cors_allowed_origins="*",
        cors_credentials=False,
        max_http_buffer_size=SOCKET_MAX_MESSAGE_BYTES,
        ping_interval=25,
        ping_timeout=20,
        manage_session=False,
        # Each client's events run one after another in its own reading task (the Engine.IO layer already
        # gives every client one) instead of a new task per event: a spawn less per chat message.
        async_handlers=False,
        serializer=JsonPacket,
    )
    init_rate_limits(app)
    init_compression(app)  # before the cache hook: hooks run last-registered first (core/compression.py)
    register_security(app)
    register_http_cache(app)
    register_cors(app)

    @app.teardown_request
    def _drop_deferred(exc: BaseException | None) -> None:
        from conference.core.after_commit import discard_deferred

        discard_deferred()


def _register_blueprints(app: Flask) -> None:
    from conference.agenda.routes import bp as agenda_bp
    from conference.attendance.routes import bp as attendance_bp
    from conference.auth.routes import bp as auth_bp
    from conference.core.apidocs import bp as apidocs_bp
    from conference.core.health import bp as health_bp
    from conference.core.i18n import bp as i18n_bp
    from conference.core.metrics import bp as metrics_bp
    from conference.core.security import csrf_exempt_endpoint
    from conference.core.unsubscribe import bp as mail_bp
    from conference.events.jobs_page import bp as jobs_bp
    from conference.events.routes import bp as events_bp
    from conference.feedback.routes import bp as feedback_bp
    from conference.legal.routes import bp as legal_bp
    from conference.live.routes import bp as live_bp
    from conference.mails.routes import bp as mails_bp
    from conference.people.routes import bp as people_bp
    from conference.presentations.routes import bp as presentations_bp
    from conference.speakers.routes import bp as speakers_bp

    for blueprint in (auth_bp, events_bp, i18n_bp, health_bp, agenda_bp, speakers_bp, presentations_bp, live_bp,
                      mail_bp, legal_bp, mails_bp, metrics_bp, jobs_bp, apidocs_bp, attendance_bp, people_bp,
                      feedback_bp):
        app.register_blueprint(blueprint)
    csrf_exempt_endpoint("auth.api_issue_token")
    csrf_exempt_endpoint("mail.unsubscribe")  # the signed link is the authorisation (RFC 8058 one-click)


def _register_sockets(app: Flask) -> None:
    from conference.extensions import socketio
    from conference.live import sockets as live_sockets

    live_sockets.register(socketio)
    # Flask-SocketIO runs every Socket.IO event in a request context built from the connection's environ
    # (path /socket.io/). With no rule for that path, each one raised and stored a NotFound whose traceback
    # reaches up through the connection's long-lived reader frame: a reference cycle per connection that
    # outlived it (see core/heap.py) and an exception per event. Engine.IO answers /socket.io/ before Flask,
    # so this rule is only ever matched, never served.
    app.add_url_rule("/socket.io/", endpoint="socketio_transport", view_func=_not_served, methods=["GET", "POST"])
    app.add_url_rule("/socket.io/", endpoint="socketio_websocket", view_func=_not_served, websocket=True)


def _not_served() -> Any:
    from flask import abort

    abort(404)


def _register_cli(app: Flask) -> None:
    from conference.cli import register_cli

    register_cli(app)


def _register_template_helpers(app: Flask) -> None:
    from flask_babel import get_locale
    from flask_login import current_user

    from conference import __version__
    from conference.core.permissions import Permission, has_permission
    from conference.core.rendering import register_filters
    from conference.speakers.services import profile_for_user

    register_filters(app)

    @app.context_processor
    def inject_globals() -> dict[str, Any]:
        return {
            "current_locale": str(get_locale()),
            "app_version": __version__,
            "languages": app.config["LANGUAGES"],
            "Permission": Permission,
            "can": lambda event, permission: has_permission(current_user, event, permission),
            "is_speaker": lambda event: profile_for_user(event, current_user) is not None,
        }
