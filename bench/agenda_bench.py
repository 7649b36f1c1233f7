"""Benchmark of the public agenda: the real server (`conference run`, eventlet) with the demo data.

Measures requests/s and p50/p99 latency at 16 concurrent keep-alive clients for the day grid, a session page,
schedule.xml and the sessions JSON API, on the demo agenda and on a day of 3 rooms and 40 sessions (the day of
bench/pretalx_compare.py), and prints SQL queries per page for the demo agenda and for one three times as large
(they must not grow with the number of sessions).

    .venv/bin/python bench/agenda_bench.py             # 5 s per page
    .venv/bin/python bench/agenda_bench.py --smoke     # about 2 s of load in all (used by the tests)

Everything runs in a temporary instance (CONFERENCE_INSTANCE_PATH) and talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SLUG = "digitalkonferenz-2027"
LARGE_SLUG = "bench-gross-2027"
DAY_SLUG = "tag-40-2027"  # the day of the pretalx comparison: 3 rooms, 40 sessions
DAY = date(2027, 3, 18)
DAY_ROOMS = 3
DAY_SESSIONS = 40
CLIENTS = 16
# What a browser sends: pretalx answers clients without text/html with a plain-text schedule.
REQUEST_HEADERS = {"Accept-Language": "de",
                   "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def conference_command() -> list[str]:
    script = Path(sys.executable).parent / "conference"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "conference.entry"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def load(port: int, path: str, seconds: float, clients: int = CLIENTS) -> dict[str, float]:
    """`clients` threads with one keep-alive connection each, for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.monotonic() + seconds
    start_gate = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        start_gate.wait()
        while time.monotonic() < stop:
            began = time.perf_counter()
            try:
                conn.request("GET", path, headers=REQUEST_HEADERS)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            latencies[index].append(time.perf_counter() - began)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start_gate.wait()
    for thread in threads:
        thread.join(seconds + 15)
    elapsed = time.perf_counter() - began
    values = sorted(v for chunk in latencies for v in chunk)
    if not values:
        return {"rps": 0.0, "p50": 0.0, "p99": 0.0, "n": 0, "errors": float(sum(errors))}
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return {"rps": len(values) / elapsed, "p50": statistics.median(values) * 1000, "p99": p99 * 1000,
            "n": len(values), "errors": float(sum(errors))}


def build_large_event() -> None:
    """A copy of the demo programme on three days (3 rooms, 48 sessions), published."""
    from sqlalchemy import select

    from conference import create_app
    from conference.agenda import services
    from conference.agenda.models import ConferenceSession, Room
    from conference.agenda.releases import publish_release
    from conference.agenda.rooms import create_room
    from conference.core.after_commit import commit
    from conference.events.models import Event
    from conference.extensions import db

    app = create_app({"ASYNC_MODE": "threading"})
    with app.app_context():
        demo = db.session.scalar(select(Event).where(Event.slug == SLUG))
        assert demo is not None
        if db.session.scalar(select(Event).where(Event.slug == LARGE_SLUG)):
            return
        large = Event(slug=LARGE_SLUG, title="Großes Programm", timezone=demo.timezone, start_date=date(2027, 3, 18),
                      end_date=date(2027, 3, 20), is_published=True)
        db.session.add(large)
        db.session.flush()
        demo_rooms = db.session.scalars(select(Room).where(Room.event_id == demo.id).order_by(Room.position)).all()
        rooms = {r.id: create_room(large, name=r.name, stream_kind=r.stream_kind, stream_url=r.stream_url,
                                   position=r.position, actor=None) for r in demo_rooms}
        from conference.speakers.models import SpeakerProfile

        profiles: dict[int, SpeakerProfile] = {}
        sessions = db.session.scalars(select(ConferenceSession).where(ConferenceSession.event_id == demo.id)).all()
        for offset in range(3):
            for old in sessions:
                speakers = []
                for link in old.speakers:
                    if link.speaker_id not in profiles:
                        profiles[link.speaker_id] = SpeakerProfile(event_id=large.id, name=link.speaker.name)
                        db.session.add(profiles[link.speaker_id])
                        db.session.flush()
                    speakers.append((profiles[link.speaker_id], link.role))
                new = services.create_session(large, title=old.title, abstract=old.abstract, kind=old.kind,
                                              language=old.language, speakers=speakers, actor=None)
                for slot in old.slots:
                    shift = timedelta(days=offset)
                    services.schedule_session(new, room=rooms[slot.room_id], start_at=slot.start_at + shift,
                                              end_at=slot.end_at + shift, actor=None)
        publish_release(large, name="1.0", actor=None)
        commit()


def build_day_event() -> int:
    """One day with 3 rooms and 40 talks of 30 minutes, through our services, published; returns a session id."""
    from sqlalchemy import select

    from conference import create_app
    from conference.agenda import services
    from conference.agenda.releases import publish_release
    from conference.agenda.rooms import create_room
    from conference.core.after_commit import commit
    from conference.events.models import Event
    from conference.extensions import db
    from conference.speakers.models import SpeakerProfile

    app = create_app({"ASYNC_MODE": "threading"})
    with app.app_context():
        demo = db.session.scalar(select(Event).where(Event.slug == SLUG))
        assert demo is not None
        event = Event(slug=DAY_SLUG, title="Tag 40", timezone=demo.timezone, start_date=DAY, end_date=DAY,
                      is_published=True)
        db.session.add(event)
        db.session.flush()
        rooms = [create_room(event, name=f"Saal {i + 1}", stream_kind=None, stream_url=None, position=i,
                             actor=None) for i in range(DAY_ROOMS)]
        start = datetime(DAY.year, DAY.month, DAY.day, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
        first = 0
        for number in range(DAY_SESSIONS):
            profile = SpeakerProfile(event_id=event.id, name=f"Sprecherin {number}")
            db.session.add(profile)
            db.session.flush()
            session = services.create_session(event, title=f"Vortrag Nummer {number}",
                                              abstract=f"Kurzfassung {number}.", kind="talk", language="de",
                                              speakers=[(profile, "speaker")], actor=None)
            begin = start + timedelta(minutes=40 * (number // DAY_ROOMS))
            services.schedule_session(session, room=rooms[number % DAY_ROOMS], start_at=begin,
                                      end_at=begin + timedelta(minutes=30), actor=None)
            first = first or session.id
        publish_release(event, name="1.0", actor=None)
        commit()
        return first


def statements_recorder(statements: list[str]) -> Any:
    def record(*args: Any) -> None:
        statements.append(args[2])

    return record


def count_queries(paths: dict[str, str]) -> dict[str, int]:
    """SQL statements per anonymous request, measured in-process on a warm cache."""
    from sqlalchemy import event as sa_event

    from conference import create_app
    from conference.extensions import db

    app = create_app({"ASYNC_MODE": "threading"})
    client = app.test_client()
    counts: dict[str, int] = {}
    with app.app_context():
        engine = db.engine
    for name, path in paths.items():
        with app.app_context():
            client.get(path)
        statements: list[str] = []
        record = statements_recorder(statements)
        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            with app.app_context():
                status = client.get(path).status_code
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        counts[name] = len(statements)
    return counts


def pages(slug: str, session_id: int) -> dict[str, str]:
    return {"day grid": f"/events/{slug}/agenda", "session page": f"/events/{slug}/sessions/{session_id}",
            "schedule.xml": f"/events/{slug}/schedule.xml", "sessions API": f"/api/v1/events/{slug}/sessions"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="load per page (default 5)")
    parser.add_argument("--smoke", action="store_true", help="a quick run (about 2 s of load) for the tests")
    parser.add_argument("--mode", choices=["eventlet", "gevent"], default="eventlet")
    args = parser.parse_args()
    seconds = 0.4 if args.smoke else args.seconds

    instance = tempfile.mkdtemp(prefix="agenda-bench-")
    env = {**os.environ, "CONFERENCE_INSTANCE_PATH": instance, "CONFERENCE_ASYNC_MODE": args.mode,
           "CONFERENCE_DEVELOPMENT": "1"}
    env.pop("CONFERENCE_DATABASE_URL", None)
    os.environ.update({"CONFERENCE_INSTANCE_PATH": instance})
    os.environ.pop("CONFERENCE_DATABASE_URL", None)
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([*conference_command(), "demo", "--attendees", "20"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, cwd=PROJECT_ROOT)
        build_large_event()
        day_session = build_day_event()
        queries_demo = count_queries(pages(SLUG, 2))
        queries_large = count_queries(pages(LARGE_SLUG, 18))
        port = free_port()
        server = subprocess.Popen([*conference_command(), "run", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
        wait_for(port)
        print(f"server: conference run ({args.mode}), {CLIENTS} concurrent keep-alive clients, "
              f"{seconds:g} s per page; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        failed = False
        for title, slug, session_id in (("demo agenda (3 rooms, 16 sessions)", SLUG, 2),
                                        (f"one day ({DAY_ROOMS} rooms, {DAY_SESSIONS} sessions)", DAY_SLUG,
                                         day_session)):
            print(title)
            print(f"{'page':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}")
            for name, path in pages(slug, session_id).items():
                load(port, path, min(seconds, 0.2), clients=4)  # warm-up
                result = load(port, path, seconds)
                failed |= result["errors"] > 0 or result["n"] == 0
                print(f"{name:<14} {result['rps']:>8.0f} {result['p50']:>8.1f} {result['p99']:>8.1f} "
                      f"{int(result['n']):>9} {int(result['errors']):>7}")
            print()
        print("SQL queries per page (anonymous, warm):")
        print(f"{'page':<14} {'demo (16)':>10} {'3x (48)':>8}")
        for name in queries_demo:
            print(f"{name:<14} {queries_demo[name]:>10} {queries_large[name]:>8}")
        grows = any(queries_large[name] > queries_demo[name] for name in queries_demo)
        if grows:
            print("FAIL: queries grow with the number of sessions")
        return 1 if failed or grows else 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

