"""Several workers, one event: the Socket.IO message queue (Redis, JSON only) and the relay of core signals.

python-socketio's `RedisManager` carries every emit between the workers as JSON (`json.dumps` of the
packet; binary attachments as base64; no pickle). `QueueManager` adds what a conference needs from it:

- it reconnects after a Redis outage within a second instead of backing off up to a minute;
- a publish during an outage fails at once instead of holding up the sender's acknowledgement;
- after an outage each worker replays to its own clients the chat messages stored since shortly before the
  outage began (`chat:messages`), so clients on other workers catch up without doing anything (clients keep
  messages by id, so a message they already have is not shown twice);
- it carries the relay channel: reactions of the live layer to logout, ended logins (password change, "log out
  everywhere"), token revocation and membership changes act on open sockets in the process that holds them,
  so the signal's keyword arguments are published (JSON) and every other worker runs the same live receiver.
  Room broadcasts of agenda releases and session state need no relay: they are emits and travel through the
  queue already.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import socketio as python_socketio
from flask import Flask
from sqlalchemy import select

from conference.core.signals import (
    account_erased,
    api_token_revoked,
    login_session_ended,
    logins_ended,
    membership_changed,
    retention_purged,
)
from conference.extensions import db, socketio
from conference.settings import get_settings

log = logging.getLogger("conference.live.relay")

QUEUE_CHANNEL = "flask-socketio"  # Flask-SocketIO's default; all workers of a deployment share it
RELAY_CHANNEL = "conference:relay"
RECONNECT_SECONDS = 0.5
REPLAY_MARGIN = timedelta(seconds=10)  # messages in flight when Redis went away are replayed too
REPLAY_LIMIT = 500  # per room
RELAYED = {"login_session_ended": login_session_ended, "api_token_revoked": api_token_revoked,
           "membership_changed": membership_changed, "logins_ended": logins_ended, "account_erased": account_erased,
           "retention_purged": retention_purged}
_SIGNAL_NAMES = {signal: name for name, signal in RELAYED.items()}


class QueueManager(python_socketio.RedisManager):  # type: ignore[misc]
    """The Redis client manager with quick reconnects, catch-up after outages and the signal relay.

    Public: the constructor's `url` and `channel`, `set_server`, `initialize`, `host_id`. Still private, because
    python-socketio has no option for them: `_redis_connect` (the client options: no retries with back-off),
    `_publish` (fail at once during an outage), `_redis_listen_with_retries` and `_listen` (a second channel on
    the same subscription, and the resume hook). `install` checks the version and these names first
    (`conference.serving.fence`) and otherwise leaves Flask-SocketIO's own `RedisManager` in place.
    """

    PRIVATE_NAMES = ("_redis_connect", "_publish", "_redis_listen_with_retries", "_listen")

    def __init__(self, url: str, *, app: Flask, channel: str = QUEUE_CHANNEL) -> None:
        super().__init__(url, channel=channel)
        self.app = app
        self.outage_since: datetime | None = None
        self.resumed = 0  # completed reconnects after an outage (health, tests)
        self.listening = False
        self.unsent: deque[dict[str, Any]] = deque(maxlen=10_000)  # relay messages waiting for Redis
        self._lock = threading.Lock()

    def _redis_connect(self) -> None:
        from conference.config import redis_client

        self.redis = redis_client(self.redis_url)
        self.pubsub = redis_client(self.redis_url, listening=True).pubsub(ignore_subscribe_messages=True)
        self.connected = True

    def _outage(self, error: Exception) -> None:
        with self._lock:
            if self.outage_since is None:
                self.outage_since = datetime.now(UTC)
                log.warning("message queue unreachable: %s", error)
        self.connected = False

    def _publish(self, data: Any) -> Any:
        return self._send(self.channel, data)

    def _send(self, channel: str, data: Any) -> Any:
        try:
            if not self.connected:
                self._redis_connect()
            return self.redis.publish(channel, json.dumps(data, separators=(",", ":")))
        except Exception as error:  # noqa: BLE001 - delivered locally already; others catch up on resume
            self._outage(error)
            return None

    def publish_relay(self, message: dict[str, Any]) -> None:
        if self.outage_since is not None or self._send(RELAY_CHANNEL, message) is None:
            self.unsent.append(message)

    def _redis_listen_with_retries(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                self._redis_connect()
                self.pubsub.subscribe(self.channel, RELAY_CHANNEL)
                self.listening = True
                if self.outage_since is not None:
                    self._resume()
                yield from self.pubsub.listen()
            except Exception as error:  # noqa: BLE001
                self.listening = False
                self._outage(error)
                time.sleep(RECONNECT_SECONDS)

    def _listen(self) -> Iterator[bytes]:
        queue_channel, relay_channel = self.channel.encode(), RELAY_CHANNEL.encode()
        for message in self._redis_listen_with_retries():
            if message.get("type") != "message" or "data" not in message:
                continue
            if message["channel"] == queue_channel:
                yield message["data"]
            elif message["channel"] == relay_channel:
                self._on_relay(message["data"])

    def _resume(self) -> None:
        with self._lock:
            since, self.outage_since = self.outage_since, None
        self.resumed += 1
        log.info("message queue back; replaying chat since %s", since)
        while self.unsent:
            message = self.unsent.popleft()
            if self._send(RELAY_CHANNEL, message) is None:
                self.unsent.appendleft(message)
                return
        if since is not None:
            self.server.start_background_task(replay_chat, self.app, since - REPLAY_MARGIN)

    def _on_relay(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("ignored a relay message that is not JSON")
            return
        if not isinstance(message, dict) or message.get("host_id") == self.host_id:
            return
        name, kwargs = message.get("signal"), message.get("kwargs")
        if name in RELAYED and isinstance(kwargs, dict):
            self.server.start_background_task(run_receiver, self.app, str(name), kwargs)


def install(app: Flask) -> QueueManager | None:
    """Serve `app`'s sockets through `QueueManager` (before the server accepts connections)."""
    url = get_settings(app).message_queue
    if not url or not str(url).startswith(("redis://", "rediss://")):
        return None
    from conference.serving import fence

    needed = [(python_socketio.RedisManager, name) for name in QueueManager.PRIVATE_NAMES]
    if not fence.allows("message queue manager (python-socketio)", ("python-socketio",), needed,
                        fallback="python-socketio's own RedisManager (slower reconnects, no chat catch-up, "
                                 "relayed signals reach no other worker)"):
        return None
    server = socketio.server
    manager = QueueManager(str(url), app=app)
    manager.set_server(server)
    # python-socketio takes a manager only as the `client_manager` option of a new Server; Flask-SocketIO
    # builds that Server in `init_app`, before the app is known, so the manager is put in place here, before
    # the server accepts its first connection.
    server.manager = manager
    server.manager_initialized = True
    manager.initialize()  # starts the listener now, not at the first connection
    return manager


def _receivers() -> dict[str, Callable[..., Any]]:
    from conference.live import retention, socket_signals

    return {"login_session_ended": socket_signals.on_login_session_ended,
            "api_token_revoked": socket_signals.on_api_token_revoked,
            "membership_changed": socket_signals.on_membership_changed,
            "logins_ended": socket_signals.on_logins_ended,
            "account_erased": socket_signals.on_account_erased,
            "retention_purged": retention.on_retention_purged}


def run_receiver(app: Flask, name: str, kwargs: dict[str, Any]) -> None:
    """Run the live layer's receiver of a signal that another worker relayed."""
    with app.app_context():
        try:
            _receivers()[name](app, **kwargs)
        except Exception:
            log.exception("relayed %s failed", name)
        finally:
            db.session.remove()


def _publisher(name: str) -> Callable[..., None]:
    """A receiver that publishes the signal's keyword arguments for the other workers (JSON values only)."""

    def publish(sender: Flask, **kwargs: Any) -> None:
        if not isinstance(sender, Flask) or not get_settings(sender).message_queue:
            return
        values = {k: v for k, v in kwargs.items() if v is None or isinstance(v, (str, int, float, bool))}
        manager = socketio.server.manager if socketio.server is not None else None
        if isinstance(manager, QueueManager):
            manager.publish_relay({"host_id": manager.host_id, "signal": name, "kwargs": values})
            return
        _publish_directly(sender, {"host_id": None, "signal": name, "kwargs": values})

    publish.__name__ = f"relay_{name}"
    return publish


def _publish_directly(app: Flask, message: dict[str, Any]) -> None:
    """From a process that serves no sockets (e.g. a CLI command): every worker acts on the message."""
    try:
        from conference.config import redis_client

        client = redis_client(str(get_settings(app).message_queue))
        client.publish(RELAY_CHANNEL, json.dumps(message, separators=(",", ":")))
        client.close()
    except Exception as error:  # noqa: BLE001
        log.warning("could not relay %s: %s", message.get("signal"), error)


_PUBLISHERS = {name: _publisher(name) for name in RELAYED}


def register() -> None:
    """Connect the relay publishers to the signals (once; blinker keeps strong references to them)."""
    for name, signal in RELAYED.items():
        signal.connect(_PUBLISHERS[name])


def replay_chat(app: Flask, since: datetime) -> None:
    """Send this worker's clients the chat messages stored since `since` in the rooms they are in."""
    from conference.live.broadcast import built_live_state
    from conference.live.models import ChatMessage
    from conference.live.payloads import message_payload

    state = built_live_state(app)
    if state is None:
        return
    with app.app_context():
        try:
            for room in state.registry.rooms():
                if not room.startswith(("lobby:", "session:")):
                    continue
                messages = db.session.scalars(
                    select(ChatMessage).where(ChatMessage.room == room, ChatMessage.created_at >= since,
                                              ChatMessage.deleted_at.is_(None))
                    .order_by(ChatMessage.id).limit(REPLAY_LIMIT))
                payloads = [message_payload(m) for m in messages]
                if payloads:
                    socketio.server.emit("chat:messages", {"room": room, "messages": payloads}, to=room,
                                         namespace="/", ignore_queue=True)
        except Exception:
            log.exception("chat replay after the queue outage failed")
        finally:
            db.session.remove()
