"""Several workers: a retention purge run from the command line (a process that serves no sockets) reaches
every worker through the relay, and each drops its cached copies of the event's records without error."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conference import create_app
from conference.core.after_commit import commit
from conference.events import services as event_services
from conference.extensions import db
from tests.conftest import require_service
from tests.support.server import run_cli, running_server
from tests.support.services import REDIS_URL, fresh_postgres_database, redis_available

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.redis]


def past_event(database_url: str, instance: Path) -> int:
    app = create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(instance), "ASYNC_MODE": "threading",
                      "MESSAGE_QUEUE": None, "TESTING": True, "EXTERNAL_URL": "http://localhost"})
    with app.app_context():
        event = event_services.create_event(slug=f"vorbei-{uuid.uuid4().hex[:8]}", title="Vorbei",
                                            start_date=date(2020, 3, 18), end_date=date(2020, 3, 18),
                                            is_published=True)
        event.chat_retention_days = 0
        event.question_retention_days = 0
        commit()
        event_id = int(event.id)
        db.session.remove()
        db.engine.dispose()
    return event_id


def test_cli_purge_is_relayed_to_every_worker(tmp_path: Path) -> None:
    available, reason = redis_available()
    require_service("Redis", available, reason)
    import redis

    queue = REDIS_URL.format(db=9 + uuid.uuid4().int % 7)
    with fresh_postgres_database("psycopg") as database_url, \
            running_server(tmp_path / "instance", "eventlet", workers=2, demo_attendees=2,
                           CONFERENCE_DATABASE_URL=database_url, CONFERENCE_MESSAGE_QUEUE=queue) as cluster:
        event_id = past_event(database_url, tmp_path / "instance")
        client = redis.Redis.from_url(queue)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("conference:relay")
        seen: list[dict[str, Any]] = []
        stop = threading.Event()

        def collect() -> None:
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.1)
                if message is not None:
                    seen.append(json.loads(message["data"]))

        thread = threading.Thread(target=collect)
        thread.start()
        try:
            result = run_cli(["live", "purge"], cluster.env)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(m.get("signal") == "retention_purged" for m in seen):
                time.sleep(0.05)
            time.sleep(0.5)  # both workers run the receiver
        finally:
            stop.set()
            thread.join()
            pubsub.close()
            client.close()
        assert "events due: 1" in result.stdout
        relayed = [m for m in seen if m.get("signal") == "retention_purged"]
        assert [m["kwargs"] for m in relayed if m["kwargs"]["event_id"] == event_id] == [{"event_id": event_id}]
        log = cluster.log.read_text(errors="replace")
        assert "relayed retention_purged failed" not in log and "Traceback" not in log
