"""The upload quota under parallel uploads: eight 3 MB decks at once against a 5 MB quota, through a real
`conference run` (eventlet and gevent; SQLite, and PostgreSQL with the cooperative drivers). Exactly one is
stored; the others are refused with 413 and leave no row, no file and no temporary file behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.fixtures.presentations import pdf_bytes
from tests.security.conftest import Evidence
from tests.support.server import run_cli, running_server

MB = 1024 * 1024
PARALLEL = 8
SPEAKER = "sprecher.brandt@demo.invalid"  # a speaker of the demo, no organiser: the quota applies


def _deck(number: int) -> bytes:
    pdf = pdf_bytes(f"Folien {number}")
    return pdf[:9] + b"%" + bytes([number]) * (3 * MB) + b"\n" + pdf[9:]


def _speaker_sessions(server_url: str, env: dict[str, str], count: int) -> list[int]:
    """The speaker's session and `count - 1` more (new, by the organiser): the quota is per event, so
    uploads to different sessions must share it too (no version number of one session orders them)."""
    sessions = requests.get(f"{server_url}/api/v1/events/digitalkonferenz-2027/sessions", timeout=10).json()
    first = next(s for s in sessions["sessions"]
                 if any(p["name"].endswith("Thomas Brandt") for p in s.get("speakers", [])))
    profile = next(p["id"] for p in first["speakers"] if p["name"].endswith("Thomas Brandt"))
    organiser = run_cli(["users", "token", "--email", "orga@demo.invalid"], env).stdout.split()[-1]
    ids = [first["id"]]
    for number in range(1, count):
        created = requests.post(f"{server_url}/api/v1/events/digitalkonferenz-2027/sessions", timeout=10,
                                headers={"Authorization": f"Bearer {organiser}"},
                                json={"title": f"Werkstatt {number}", "speakers": [profile]})
        assert created.status_code == 201, created.text[:300]
        ids.append(created.json()["session"]["id"])
    return ids


def _race(server_url: str, env: dict[str, str], instance: Path, evidence: Evidence,
          line_up: Callable[[Callable[[], list[requests.Response]]], list[requests.Response]] | None = None) -> None:
    """Eight parallel uploads over four sessions of one speaker; `line_up` may hold them at the database."""
    token = run_cli(["users", "token", "--email", SPEAKER], env).stdout.split()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    sessions = _speaker_sessions(server_url, env, 4)
    urls = [f"{server_url}/api/v1/sessions/{sessions[number % 4]}/presentations" for number in range(PARALLEL)]
    folder = instance / "uploads" / "presentations"
    before = {p.name for p in folder.iterdir()}
    versions_before = sum(len(requests.get(url, headers=headers, timeout=10).json()["presentations"])
                          for url in urls[:4])
    decks = [_deck(number) for number in range(PARALLEL)]
    start = threading.Barrier(PARALLEL)

    def upload(number: int) -> requests.Response:
        start.wait()
        return requests.post(urls[number], headers=headers, timeout=120,
                             files={"file": (f"Folien-{number}.pdf", decks[number])})

    def all_uploads() -> list[requests.Response]:
        with ThreadPoolExecutor(PARALLEL) as pool:
            return list(pool.map(upload, range(PARALLEL)))

    answers = line_up(all_uploads) if line_up is not None else all_uploads()
    statuses = sorted(answer.status_code for answer in answers)
    for answer in answers:
        evidence.add("variants")
        if answer.status_code >= 500:
            evidence.note("server_errors", f"parallel upload {answer.status_code}")
        if answer.status_code != 201:
            assert answer.json()["error"] == "too_large", answer.text[:300]
    if statuses.count(201) > 1:
        evidence.note("wrongly_accepted", f"{statuses.count(201)} parallel uploads past the quota")
    assert statuses == [201] + [413] * (PARALLEL - 1), statuses
    stored = {p.name for p in folder.iterdir()} - before
    assert len(stored) == 1 and not [name for name in stored if name.endswith(".part")], stored
    listings = [requests.get(url, headers=headers, timeout=10).json()["presentations"] for url in urls[:4]]
    assert sum(len(listing) for listing in listings) == versions_before + 1
    # The quota is used: one more upload is refused before its body is read.
    again = requests.post(urls[0], headers={**headers, "Accept-Language": "en"}, timeout=60,
                          files={"file": ("noch.pdf", decks[1])})
    assert again.status_code == 413 and "quota" in again.json()["message"]


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_parallel_uploads_stay_within_the_quota_on_sqlite(tmp_path: Path, async_mode: str,
                                                         evidence: Evidence) -> None:
    with running_server(tmp_path / "instance", async_mode, demo_attendees=2,
                        CONFERENCE_PRESENTATION_USER_QUOTA_BYTES=str(5 * MB)) as server:
        _race(server.url, server.env, server.instance, evidence)


@pytest.mark.server
@pytest.mark.postgres
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_parallel_uploads_stay_within_the_quota_on_postgres(tmp_path: Path, postgres_url: str, async_mode: str,
                                                           evidence: Evidence) -> None:
    """The uploads are held at their INSERT (its foreign key check waits for the speaker's row, locked here)
    and let go together: several are inside the window between their insert and their commit at once."""
    url = postgres_url.replace("+psycopg2", "+psycopg")  # eventlet maps it to psycopg2 + psycogreen

    def line_up(run: Callable[[], list[requests.Response]]) -> list[requests.Response]:
        engine = create_engine(postgres_url)
        try:
            with engine.connect() as holder, ThreadPoolExecutor(1) as pool:
                holder.execute(text("SELECT id FROM users WHERE email = :email FOR UPDATE"), {"email": SPEAKER})
                answers = pool.submit(run)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not holder.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND pid <> pg_backend_pid()")).scalar():
                    time.sleep(0.05)
                time.sleep(3)  # the others reach their insert meanwhile
                holder.rollback()
                return answers.result(timeout=120)
        finally:
            engine.dispose()

    with running_server(tmp_path / "instance", async_mode, demo_attendees=2, CONFERENCE_DATABASE_URL=url,
                        CONFERENCE_PRESENTATION_USER_QUOTA_BYTES=str(5 * MB)) as server:
        _race(server.url, server.env, server.instance, evidence, line_up)
