"""Bulk certificate generation off the event loop: the PDFs are rendered in a native thread
(`conference.core.native`) and written as one ZIP per event into UPLOAD_DIR/certificates.

A job runner (`conference/core/jobs.py`) is being built elsewhere; until it is merged, the state of a running
job is known only to the worker that started it, while the finished ZIP (on the shared upload folder) is
seen by every worker.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask

from conference.attendance.certificates import Document, write_zip
from conference.core import native
from conference.events.models import Event
from conference.extensions import socketio

log = logging.getLogger("conference.attendance")
_lock = threading.Lock()
_running: dict[tuple[int, int], dict[str, Any]] = {}


def bulk_path(app: Any, event: Event) -> Path:
    folder = Path(app.config["UPLOAD_DIR"]) / "certificates"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"event-{event.id}.zip"


def bulk_state(app: Any, event: Event) -> dict[str, Any]:
    """{"running": bool, "ready": bool, "count": int | None, "seconds": float | None, "error": bool}."""
    with _lock:
        job = dict(_running.get((id(app), event.id), {}))
    path = bulk_path(app, event)
    return {"running": bool(job.get("running")), "ready": path.is_file(), "count": job.get("count"),
            "seconds": job.get("seconds"), "error": bool(job.get("error"))}


def start_bulk(app: Flask, event: Event, documents: list[Document]) -> bool:
    """Render `documents` into the event's ZIP in a native thread; False if a job for the event is running."""
    key = (id(app), event.id)
    path = bulk_path(app, event)
    with _lock:
        if _running.get(key, {}).get("running"):
            return False
        _running[key] = {"running": True}

    def run() -> None:
        started = time.perf_counter()
        try:
            count = native.submit(write_zip, documents, path)()  # waits cooperatively on the event loop
            state = {"running": False, "count": count, "seconds": round(time.perf_counter() - started, 2)}
        except Exception:
            log.exception("certificate generation failed for event %s", event.id)
            state = {"running": False, "error": True}
        with _lock:
            _running[key] = state

    socketio.start_background_task(run)
    return True
