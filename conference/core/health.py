"""Health endpoint for load balancers and operators: database and message queue status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from conference import __version__
from conference.extensions import db
from conference.settings import get_settings

bp = Blueprint("health", __name__)


def database_status() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return "ok"
    except Exception:  # noqa: BLE001 - any failure means "down"
        db.session.rollback()
        return "down"


def queue_status() -> str:
    """`none` (one process), `ok`, or `down` when Redis does not answer or this worker's listener is cut off."""
    url = get_settings().message_queue
    if not url:
        return "none"
    client = current_app.extensions.get("conference_health_redis")
    try:
        if client is None:
            from conference.config import redis_client

            client = current_app.extensions.setdefault("conference_health_redis", redis_client(url))
        client.ping()
    except Exception:  # noqa: BLE001
        return "down"
    from conference.extensions import socketio

    manager = getattr(socketio.server, "manager", None)
    if getattr(manager, "listening", True) is False:
        return "down"  # Redis answers again, but this worker has not re-subscribed yet
    return "ok"


@bp.route("/healthz")
def health() -> Any:
    database, queue = database_status(), queue_status()
    if database != "ok":
        status, code = "down", 503
    elif queue == "down":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return jsonify({"status": status, "database": database, "queue": queue, "version": __version__}), code
