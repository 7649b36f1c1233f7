"""Operator metrics at `/metrics` in the Prometheus text format.

What is counted: open sockets and rooms, live events by outcome (a chat message stored, or refused and why),
chat deliveries and how long a message waited before it was handed to the sockets, the event loop's lag (the
loop probe's wake-ups), HTTP request time by route class, the database pool, the mail queue and upload bytes.

Several workers (`conference run --workers N`) are separate processes: the supervisor gives them one
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multi-process mode, which must be set before the library is
imported) and whichever worker answers a scrape reports the sum over all of them. Values read at scrape time
(pool use, rooms) are per worker and labelled with its pid.

`/metrics` is not public: it answers requests that come straight from this machine's loopback address (not
through a proxy: no `X-Forwarded-For`), or that carry `Authorization: Bearer <CONFERENCE_METRICS_TOKEN>`;
everyone else gets 404. The shipped nginx config also refuses the path. `CONFERENCE_METRICS=0` turns it off.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from conference.core.loop_probe import ClosingBody
from conference.settings import get_settings

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

SOCKETS = Gauge("conference_socket_connections", "Open Socket.IO connections", multiprocess_mode="livesum")
LIVE_EVENTS = Counter("conference_live_events_total",
                      "Socket.IO events handled, by event and outcome (ok, or the refusal's error code)",
                      ["event", "outcome"])
DELIVERIES = Counter("conference_chat_deliveries_total",
                     "Chat messages handed to sockets (one per message and socket in the room)")
DELIVERY_SECONDS = Histogram("conference_chat_delivery_seconds",
                             "From a stored chat message to its frame being handed to the room's sockets "
                             "(grouped frames: the oldest message of the group)",
                             buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
LOOP_LAG_SECONDS = Histogram("conference_event_loop_lag_seconds",
                             "How much later than asked the loop probe's 10 ms sleep woke (the loop was busy)",
                             buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
REQUEST_SECONDS = Histogram("conference_http_request_seconds",
                            "HTTP request time until the response was closed, by route class",
                            ["route_class", "method"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
UPLOAD_BYTES = Counter("conference_upload_bytes_total", "Bytes of stored uploads, by kind", ["kind"])

bp = Blueprint("metrics", __name__)


# --- recording (called from the live layer, the loop probe and the upload services) ---------------------------

def socket_connected() -> None:
    SOCKETS.inc()


def socket_disconnected() -> None:
    SOCKETS.dec()


def live_event(event: str, outcome: str) -> None:
    LIVE_EVENTS.labels(event, outcome).inc()


def chat_sent(room_sockets: int, messages: int, seconds: float) -> None:
    """`messages` went out in one frame to `room_sockets` sockets, `seconds` after the oldest was published."""
    if room_sockets:
        DELIVERIES.inc(room_sockets * messages)
    for _ in range(messages):
        DELIVERY_SECONDS.observe(seconds)


def loop_lag(seconds: float) -> None:
    LOOP_LAG_SECONDS.observe(seconds)


def upload_stored(kind: str, size: int) -> None:
    UPLOAD_BYTES.labels(kind).inc(size)


def route_class(method: str, path: str) -> str:
    """A small, fixed set of names for request paths: ids and secrets never become label values."""
    if path.startswith("/static/"):
        return "static"
    if path in ("/healthz", "/metrics"):
        return "health"
    if method == "POST" and path.endswith(("/slides", "/presentations")):
        return "upload"
    if method in ("GET", "HEAD") and (path.endswith(("/download", ".pdf", "archive.zip")) or "/slides/" in path):
        return "download"
    if path.startswith("/api/"):
        return "api"
    if path.endswith((".ics", ".xml", ".json", ".zip", ".csv")):
        return "export"
    return "form" if method == "POST" else "page"


def timed_requests(app: Callable[..., Iterable[bytes]],
                   clock: Callable[[], float] = time.perf_counter) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: observe each request's time (Socket.IO's long polls and websockets left out: they last
    as long as the client wants)."""

    def timed(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/socket.io/"):
            return app(environ, start_response)
        started = clock()
        method = environ.get("REQUEST_METHOD", "GET")
        method = method if method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS") else "other"
        observe = REQUEST_SECONDS.labels(route_class(method, path), method).observe
        try:
            body = app(environ, start_response)
        except BaseException:
            observe(clock() - started)
            raise
        return ClosingBody(body, lambda: observe(clock() - started))

    return timed


# --- read at scrape time -------------------------------------------------------------------------------------

class ScrapeTimeCollector(Collector):
    """Figures asked for when scraped: this worker's database pool and rooms, and the mail queue (shared)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pid = str(os.getpid())
        with self.app.app_context():
            from sqlalchemy import func, select

            from conference.core.mail import OutboxMessage
            from conference.extensions import db

            pool = db.engine.pool
            in_use = GaugeMetricFamily("conference_db_pool_connections",
                                       "Database connections of this worker's pool, by state", labels=["pid", "state"])
            checked_out, checked_in = getattr(pool, "checkedout", None), getattr(pool, "checkedin", None)
            if checked_out is not None and checked_in is not None:  # QueuePool; SQLite's pools may lack them
                in_use.add_metric([pid, "in_use"], checked_out())
                in_use.add_metric([pid, "idle"], checked_in())
            yield in_use
            from conference.live.broadcast import live_state

            rooms = GaugeMetricFamily("conference_live_rooms", "Rooms with at least one socket in this worker",
                                      labels=["pid"])
            rooms.add_metric([pid], len(live_state(self.app).registry.rooms()))
            yield rooms
            mails = GaugeMetricFamily("conference_mail_queue", "Mails in the queue, by status", labels=["status"])
            try:
                rows = db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
                for status, count in rows:
                    mails.add_metric([str(status)], count)
            finally:
                db.session.remove()
            yield mails


def registry_for(app: Any) -> CollectorRegistry:
    registry = app.extensions.get("conference_metrics_registry")
    if registry is None:
        if MULTIPROCESS:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            from prometheus_client import REGISTRY

            registry = CollectorRegistry()
            registry.register(_Forward(REGISTRY))
        registry.register(ScrapeTimeCollector(app))
        app.extensions["conference_metrics_registry"] = registry
    return registry


class _Forward(Collector):
    """This process's own metrics (the default registry) inside the app's registry."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        return iter(self.source.collect())


def _may_read_metrics() -> bool:
    token = get_settings().metrics_token or ""
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), str(token).encode()):
        return True
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False  # through a proxy: the loopback address is the proxy's, not the reader's
    try:
        return ipaddress.ip_address(request.environ.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@bp.route("/metrics")
def metrics() -> Response:
    if not get_settings().metrics or not _may_read_metrics():
        abort(404)
    body = generate_latest(registry_for(current_app))
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def prepare_worker_directory(path: str) -> None:
    """The supervisor's part of multi-process mode: an empty directory for this run's worker files."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay: they are totals)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)
