"""Health endpoint for load balancers and operators: database and message queue status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from conference.extensions import db

bp = Blueprint("health", __name__)


def database_status() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception:
        db.session.rollback()
        return "down"


def queue_status() -> str:
    url = current_app.config.get("MESSAGE_QUEUE")
    if not url:
        return "none"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return "ok"
    except Exception:
        return "down"


@bp.route("/healthz")
def health() -> Any:
    database, queue = database_status(), queue_status()
    if database != "ok":
        status, code = "down", 503
    elif queue == "down":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return jsonify({"status": status, "database": database, "queue": queue}), code
