"""Our public schedule against pretalx's, on the same machine, with the same load client.

Both sides get the same day: 3 rooms, 40 talks, one published release. Each is served by ONE process:
ours by `conference run` (eventlet), pretalx by gunicorn with one gthread worker (16 threads, so it keeps
connections alive like ours; DEBUG off, SQLite, cached template loader, collected static files). Both are
loaded by 16 concurrent keep-alive clients for the same time, on 127.0.0.1 only.

    .venv/bin/python bench/pretalx_compare.py              # 10 s per page
    .venv/bin/python bench/pretalx_compare.py --seconds 5

pretalx is installed from PyPI into bench/.pretalx-venv (ignored by git, not part of `make test`). Its event
is created through pretalx's own ORM inside its Django project; ours through our services (`conference demo`
plus a generated 40-session day, published as a release). Everything lives in a temporary folder that is
removed at the end, and both servers are stopped whatever happens.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# This checkout's code, not whatever the virtualenv installed as editable (a second worktree shares the venv):
# first for this process (the day is built in-process), then for the server through PYTHONPATH.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from agenda_bench import (  # noqa: E402
    CLIENTS,
    DAY,
    DAY_ROOMS,
    DAY_SESSIONS,
    DAY_SLUG,
    PROJECT_ROOT,
    REQUEST_HEADERS,
    build_day_event,
    conference_command,
    free_port,
    load,
)

PRETALX_VERSION = "2025.2.2"
VENV = PROJECT_ROOT / "bench" / ".pretalx-venv"
SLUG = DAY_SLUG
ROOMS = DAY_ROOMS
TALKS = DAY_SESSIONS
INSTALL_TIMEOUT = 900

# Runs inside pretalx's virtualenv with DJANGO_SETTINGS_MODULE=pretalx.settings; argv: slug, iso day.
PRETALX_SETUP = r'''
import datetime as dt, sys
import django
django.setup()
from django_scopes import scope, scopes_disabled
from pretalx.event.models import Event, Organiser
from pretalx.person.models import SpeakerProfile, User
from pretalx.schedule.models import Room, TalkSlot
from pretalx.submission.models import Submission, SubmissionType

slug, day, rooms, talks = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with scopes_disabled():
    organiser = Organiser.objects.create(name="Bench Org", slug="benchorg")
    event = Event.objects.create(name="Tag 40", slug=slug, organiser=organiser, is_public=True, date_from=day,
                                 date_to=day, timezone="Europe/Berlin", email="orga@example.invalid",
                                 locale_array="de,en", locale="de")
with scope(event=event):
    event.build_initial_data()
    kind = SubmissionType.objects.create(event=event, name="Vortrag", default_duration=30)
    room_objects = [Room.objects.create(event=event, name=f"Saal {i + 1}", position=i) for i in range(rooms)]
    start = event.datetime_from + dt.timedelta(hours=9)
    for number in range(talks):
        user = User.objects.create_user(email=f"sprecher{number}@example.invalid", password=None,
                                        name=f"Sprecherin {number}")
        SpeakerProfile.objects.create(user=user, event=event, biography=f"Biografie {number}.")
        submission = Submission.objects.create(event=event, title=f"Vortrag Nummer {number}",
                                               submission_type=kind, abstract=f"Kurzfassung {number}.",
                                               description=f"Beschreibung {number}.", content_locale="de",
                                               state="confirmed")
        submission.speakers.add(user)
        begin = start + dt.timedelta(minutes=40 * (number // rooms))
        TalkSlot.objects.create(submission=submission, schedule=event.wip_schedule,
                                room=room_objects[number % rooms], start=begin,
                                end=begin + dt.timedelta(minutes=30), is_visible=True)
    event.wip_schedule.freeze("1.0", notify_speakers=False)
    print(Submission.objects.filter(event=event).first().code)
'''


def pretalx_python() -> Path:
    return VENV / "bin" / "python"


def ensure_pretalx() -> None:
    if pretalx_python().exists() and subprocess.run(
            [str(pretalx_python()), "-c", "import pretalx, gunicorn"], capture_output=True).returncode == 0:
        return
    print(f"installing pretalx {PRETALX_VERSION} and gunicorn into {VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
    subprocess.run([str(pretalx_python()), "-m", "pip", "install", "-q", f"pretalx=={PRETALX_VERSION}", "gunicorn"],
                   check=True, timeout=INSTALL_TIMEOUT)


def pretalx_env(data: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFERENCE_", "DJANGO_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "pretalx.settings", "PRETALX_DATA_DIR": str(data),
                "PRETALX_FILESYSTEM_STATIC": str(data / "static"), "PRETALX_DEBUG": "False",
                "PRETALX_SITE_URL": f"http://127.0.0.1:{port}", "PRETALX_DB_TYPE": "sqlite3",
                "PRETALX_DB_NAME": str(data / "db.sqlite3"), "PRETALX_NO_INITIAL_LOG": "1"})
    return env


def start_pretalx(work: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Migrate, collect static files (no Node build: the public pages use the shipped files), create the
    event through pretalx's ORM and start gunicorn. Returns the server and a talk code."""
    data = work / "pretalx"
    data.mkdir()
    env = pretalx_env(data, port)
    python = str(pretalx_python())
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        subprocess.run([python, "-m", "pretalx", *command], env=env, cwd=data, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
    code = subprocess.run([python, "-c", PRETALX_SETUP, SLUG, DAY.isoformat(), str(ROOMS), str(TALKS)], env=env,
                          cwd=data, check=True, timeout=300, capture_output=True, text=True).stdout.split()[-1]
    server = subprocess.Popen([str(VENV / "bin" / "gunicorn"), "pretalx.wsgi", "--bind", f"127.0.0.1:{port}",
                               "--workers", "1", "--worker-class", "gthread", "--threads", str(CLIENTS),
                               "--keep-alive", "30", "--log-level", "warning"],
                              env=env, cwd=data, stdout=subprocess.DEVNULL, stderr=(work / "pretalx.log").open("wb"))
    return server, code


def wait_http(port: int, path: str, timeout: float = 60.0) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            status = conn.getresponse().status
            if status == 200:
                return
            raise RuntimeError(f"{path} answered {status}")
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from port {port}")


def fetch(port: int, path: str) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=REQUEST_HEADERS)
    return conn.getresponse().read().decode()


def stop(server: subprocess.Popen[bytes] | None) -> None:
    if server is None:
        return
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def measure(port: int, path: str, seconds: float) -> dict[str, float]:
    load(port, path, min(seconds, 1.0), clients=4)  # warm-up
    return load(port, path, seconds)


class SetupFailed(Exception):
    """pretalx could not be installed, set up or started (the message says why)."""


@dataclass(frozen=True)
class Servers:
    pretalx_port: int
    our_port: int
    talk_code: str  # a pretalx talk of the day
    session_id: int  # one of our sessions of the day


@contextmanager
def both_servers() -> Iterator[Servers]:
    """Both sides serving the same day (pretalx by gunicorn, ours by `conference run`), in a temporary folder;
    both stopped and the folder removed whatever happens."""
    try:
        ensure_pretalx()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise SetupFailed(f"pretalx could not be installed: {error}") from None
    work = Path(tempfile.mkdtemp(prefix="pretalx-compare-"))
    ours: subprocess.Popen[bytes] | None = None
    theirs: subprocess.Popen[bytes] | None = None
    try:
        instance = work / "instance"
        env = {**os.environ, "CONFERENCE_INSTANCE_PATH": str(instance), "CONFERENCE_ASYNC_MODE": "eventlet",
               "CONFERENCE_DEVELOPMENT": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))}
        env.pop("CONFERENCE_DATABASE_URL", None)
        os.environ["CONFERENCE_INSTANCE_PATH"] = str(instance)
        os.environ.pop("CONFERENCE_DATABASE_URL", None)
        subprocess.run([*conference_command(), "demo", "--attendees", "20"], env=env, check=True, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
        session_id = build_day_event()

        pretalx_port = free_port()
        try:
            theirs, code = start_pretalx(work, pretalx_port)
            wait_http(pretalx_port, f"/{SLUG}/schedule/")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError) as error:
            log = work / "pretalx.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise SetupFailed(f"pretalx could not be set up or started: {error}\n{tail}") from None
        our_port = free_port()
        ours = subprocess.Popen([*conference_command(), "run", "--host", "127.0.0.1", "--port", str(our_port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
        wait_http(our_port, "/healthz")
        yield Servers(pretalx_port, our_port, code, session_id)
    finally:
        stop(theirs)
        stop(ours)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="load per page (default 10)")
    args = parser.parse_args()

    results: list[tuple[str, str, dict[str, float]]] = []
    pairs: list[tuple[str, str, str | None, str | None]] = []
    try:
        with both_servers() as servers:
            pretalx_port, our_port, code, session_id = (servers.pretalx_port, servers.our_port, servers.talk_code,
                                                        servers.session_id)
            # (pretalx page, our counterpart): pretalx's schedule page is an HTML shell whose widget then loads
            # widgets/schedule.json; its no-JS page is the server-rendered grid like ours.
            pairs = [
                ("schedule page", f"/{SLUG}/schedule/", "day grid", f"/events/{SLUG}/agenda"),
                ("schedule (no JS)", f"/{SLUG}/schedule/nojs", None, None),
                ("widget data", f"/{SLUG}/schedule/widgets/schedule.json", "sessions API",
                 f"/api/v1/events/{SLUG}/sessions"),
                ("talk page", f"/{SLUG}/talk/{code}/", "session page", f"/events/{SLUG}/sessions/{session_id}"),
                ("schedule.xml", f"/{SLUG}/schedule.xml", "schedule.xml", f"/events/{SLUG}/schedule.xml"),
            ]
            # Both hold the whole day: the last talk's title is on both grids (no empty-page comparison).
            last = f"Vortrag Nummer {TALKS - 1}"
            for port, path in ((pretalx_port, pairs[1][1]), (our_port, pairs[0][3] or "")):
                if last not in fetch(port, path):
                    raise RuntimeError(f"{path} does not show {last!r}")
            print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {CLIENTS} concurrent "
                  f"keep-alive clients, {args.seconds:g} s per page; one server process each, measured in turns")
            print(f"day: {ROOMS} rooms, {TALKS} sessions, one published release")
            # In turns (pretalx, ours, pretalx, ...) so that other load on the machine hits both sides alike; the
            # idle server uses no CPU meanwhile.
            for their_name, their_path, our_name, our_path in pairs:
                results.append(("pretalx", their_name, measure(pretalx_port, their_path, args.seconds)))
                if our_name and our_path:
                    results.append(("ours", our_name, measure(our_port, our_path, args.seconds)))
    except SetupFailed as error:
        print(error)
        return 2

    print(f"{'server':<8} {'page':<17} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7}")
    for server, name, r in sorted(results, key=lambda item: item[0] != "pretalx"):
        print(f"{server:<8} {name:<17} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {int(r['n']):>9} "
              f"{int(r['errors']):>7}")
    rates = {(server, name): r["rps"] for server, name, r in results}
    baseline = rates[("pretalx", "schedule page")]
    counterpart = {our: their for their, _p, our, _q in pairs if our}
    print()
    print("ours, req/s as a multiple of pretalx's schedule page and of the pretalx counterpart:")
    for server, name, r in results:
        if server == "ours":
            their = counterpart[name]
            print(f"  {name:<14} {r['rps'] / baseline:>6.1f}x schedule page   "
                  f"{r['rps'] / rates[('pretalx', their)]:>6.1f}x {their:<14} p99 {r['p99']:.1f} ms")
    failed = any(r["errors"] or not r["n"] for _s, _n, r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
