"""The job queue: one claim per job under a global limit (SQLite and PostgreSQL), retries with backoff, jobs that
outlive a restart, the jobs page; and the sandboxed children: minimal environment, limits, timeout, slots."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from conference import create_app
from conference.core import children, jobs
from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.jobs import Job, JobFailed, JobRunner, JobSettings, claim_next, run_one
from conference.extensions import db
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import login

calls: list[tuple[str, Any]] = []


def record(app: Flask, payload: dict[str, Any]) -> None:
    calls.append(("run", payload))
    if payload.get("fail") == "transient":
        raise RuntimeError("database hiccup")
    if payload.get("fail") == "permanent":
        raise JobFailed("this file cannot be rendered")


def record_failure(app: Flask, payload: dict[str, Any], error: str) -> None:
    calls.append(("failed", error))


jobs.register("test.record", record, on_failure=record_failure)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


def add_jobs(count: int, **payload: Any) -> list[int]:
    rows = [Job(kind="test.record", payload=json.dumps({"n": n, **payload}), next_attempt_at=utcnow())
            for n in range(count)]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def statuses() -> dict[str, int]:
    db.session.expire_all()
    return dict(db.session.execute(select(Job.status, func.count()).group_by(Job.status)).all())  # type: ignore


def _race(app: Flask, *, jobs_count: int, threads: int, limit: int) -> tuple[list[int], int]:
    """`threads` workers claim and finish jobs at once; returns the ids claimed and the most running at once."""
    ids = add_jobs(jobs_count)
    claimed: list[int] = []
    running = peak = 0
    lock = threading.Lock()

    def work(number: int) -> None:
        nonlocal running, peak
        with app.app_context():
            while True:
                job = claim_next(utcnow(), limit=limit, worker=f"t{number}")
                if job is None:
                    with app.app_context():
                        left = db.session.scalar(select(func.count()).select_from(Job)
                                                 .where(Job.status != "done"))
                        db.session.rollback()
                    if not left:
                        return
                    time.sleep(0.005)
                    continue
                with lock:
                    claimed.append(job.id)
                    running += 1
                    peak = max(peak, running)
                time.sleep(0.01)
                with lock:
                    running -= 1
                jobs.finish(job, None, now=utcnow(), retry_first=1)
            db.session.remove()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sorted(claimed) == sorted(ids)  # each exactly once
    return claimed, peak


def test_every_job_is_claimed_once_and_never_more_run_than_the_limit_sqlite(app: Flask) -> None:
    _claimed, peak = _race(app, jobs_count=40, threads=6, limit=3)
    assert peak <= 3 and peak >= 2  # the limit held, and the workers really overlapped
    assert statuses() == {"done": 40}


@pytest.mark.postgres
def test_every_job_is_claimed_once_and_never_more_run_than_the_limit_postgresql(tmp_path: Path,
                                                                               postgres_url: str) -> None:
    app = create_app(settings_for_tests(tmp_path, DATABASE_URL=postgres_url))
    with app.app_context():
        db.create_all()
        _claimed, peak = _race(app, jobs_count=40, threads=6, limit=3)
        assert 2 <= peak <= 3
        assert statuses() == {"done": 40}
        db.session.remove()
        db.engine.dispose()


def test_a_failing_job_is_retried_with_growing_pauses_then_failed(app: Flask) -> None:
    settings = JobSettings(retry_first=10)
    (job_id,) = add_jobs(1, fail="transient")
    start = utcnow()
    pauses = []
    for attempt in range(1, 4):
        job = claim_next(start + timedelta(hours=attempt), limit=2, worker="w")
        assert job is not None and job.attempts == attempt
        before = utcnow()
        run_one(app, job, settings)
        job = db.session.get(Job, job_id, populate_existing=True)
        if attempt < 3:
            assert job.status == "queued" and "database hiccup" in job.last_error
            pauses.append((job.next_attempt_at - before).total_seconds())
    assert 9 <= pauses[0] <= 11 and 19 <= pauses[1] <= 21  # 10 s, then twice as long
    assert job.status == "failed" and job.finished_at is not None
    assert [kind for kind, _ in calls] == ["run", "run", "run", "failed"]


def test_a_permanent_failure_is_not_retried(app: Flask) -> None:
    (job_id,) = add_jobs(1, fail="permanent")
    run_one(app, claim_next(utcnow(), limit=2, worker="w"), JobSettings())
    job = db.session.get(Job, job_id, populate_existing=True)
    assert (job.status, job.attempts, job.last_error) == ("failed", 1, "this file cannot be rendered")
    assert calls == [("run", {"n": 0, "fail": "permanent"}), ("failed", "this file cannot be rendered")]


def test_queued_and_abandoned_jobs_are_run_by_the_next_start(tmp_path: Path) -> None:
    first = create_app(settings_for_tests(tmp_path))
    with first.app_context():
        db.create_all()
        waiting = add_jobs(2)
        (abandoned,) = add_jobs(1)
        job = db.session.get(Job, abandoned)
        job.status, job.claimed_at, job.attempts = "running", utcnow() - timedelta(hours=1), 1
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    # "Restart": a new application on the same database; its runner finds what the first one left.
    second = create_app(settings_for_tests(tmp_path, JOB_LEASE=60))
    started: list[threading.Thread] = []

    def start(function: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=function, args=args, daemon=True)
        thread.start()
        started.append(thread)
        return thread

    runner = JobRunner(second, start, forever=False)
    runner.start()
    runner.join(30)
    with second.app_context():
        assert statuses() == {"done": 3}
        assert sorted(payload["n"] for kind, payload in calls if kind == "run") == [0, 0, 1]
        assert db.session.get(Job, abandoned).attempts == 2 and len(waiting) == 2
        db.engine.dispose()


def test_a_job_queued_in_a_request_runs_after_the_commit_only(app: Flask) -> None:
    jobs.enqueue("test.record", {"n": 7})
    db.session.rollback()
    jobs.wait_idle(app)
    assert calls == [] and statuses() == {}
    jobs.enqueue("test.record", {"n": 8})
    commit()
    jobs.wait_idle(app)
    assert calls == [("run", {"n": 8})] and statuses() == {"done": 1}


def test_settings_are_checked() -> None:
    assert JobSettings.from_config({"JOB_WORKERS": "4", "JOB_MEMORY_MB": "256"}).limits.memory_bytes == 256 << 20
    with pytest.raises(ValueError, match="JOB_WORKERS"):
        JobSettings.from_config({"JOB_WORKERS": "0"})
    with pytest.raises(ValueError, match="JOB_MEMORY_MB"):
        JobSettings.from_config({"JOB_MEMORY_MB": "lots"})


# --- the jobs page ----------------------------------------------------------------------------------------


def test_organisers_see_their_events_jobs_others_do_not(app: Flask, client, slides_stage) -> None:
    event = slides_stage.event
    db.session.add_all([Job(kind="presentation.preview", event_id=event.id, label="mine.pdf", status="failed",
                            last_error="preview failed (timeout)", attempts=3),
                        Job(kind="presentation.preview", event_id=None, label="elsewhere.pdf")])
    db.session.commit()
    url = f"/manage/events/{event.slug}/jobs"
    assert client.get(url).status_code == 302  # to the login
    login(client, "attendee@example.org")
    assert client.get(url).status_code == 403
    organiser = app.test_client()
    login(organiser, "orga@example.org")
    response = organiser.get(url)
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:300]
    assert "mine.pdf" in page and "preview failed (timeout)" in page and "elsewhere.pdf" not in page
    assert organiser.get("/manage/jobs").status_code == 403  # all events: site administrators only


# --- sandboxed children -----------------------------------------------------------------------------------


LIMITS = children.Limits(memory_bytes=256 << 20, cpu_seconds=5, wall_seconds=10, open_files=32, nice=7)


def test_a_child_gets_no_secrets_and_its_own_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFERENCE_SECRET_KEY", "do-not-leak")
    monkeypatch.setenv("CONFERENCE_DATABASE_URL", "postgresql://user:password@db/x")
    answer = children.run_child("tests.core.child_probe", ["env"], limits=LIMITS)
    assert set(answer["env"]) <= {"PATH", "LANG", "LC_CTYPE"}  # Python may add LC_CTYPE itself
    assert answer["limits"] == {"RLIMIT_AS": 256 << 20, "RLIMIT_CPU": 5, "RLIMIT_NOFILE": 32}
    assert answer["nice"] >= 7


def test_a_child_over_its_memory_limit_fails() -> None:
    with pytest.raises(children.ChildFailed) as failure:
        children.run_child("tests.core.child_probe", ["alloc", "512"], limits=LIMITS)
    assert failure.value.reason == "error" and "MemoryError" in failure.value.detail
    assert children.run_child("tests.core.child_probe", ["alloc", "64"], limits=LIMITS) == {"allocated": 64 << 20}


def test_a_child_past_its_time_is_killed() -> None:
    started = time.monotonic()
    pids: list[int] = []
    with pytest.raises(children.ChildFailed) as failure:
        children.run_child("tests.core.child_probe", ["sleep", "30"], on_start=pids.append,
                           limits=children.Limits(wall_seconds=1.0))
    assert failure.value.reason == "timeout" and time.monotonic() - started < 5
    assert not Path(f"/proc/{pids[0]}").exists() or "Z" in Path(f"/proc/{pids[0]}/stat").read_text().split()[2]
    with pytest.raises(children.ChildFailed) as spun:
        children.run_child("tests.core.child_probe", ["spin"], limits=children.Limits(cpu_seconds=1,
                                                                                     wall_seconds=20))
    assert spun.value.reason == "killed" and spun.value.detail.split()[0] in ("SIGXCPU", "SIGKILL")
    with pytest.raises(children.ChildFailed, match="something broke"):
        children.run_child("tests.core.child_probe", ["fail"], limits=LIMITS)


def test_no_more_children_run_at_once_than_the_slots() -> None:
    children.configure(workers=2)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def one() -> None:
        answer = children.run_child("tests.core.child_probe", ["sleep", "0.4"], limits=LIMITS,
                                    on_start=lambda pid: starts.__setitem__(pid, time.monotonic()))
        assert answer == {"slept": 0.4}
        with lock:
            spans.append((min(starts.values()), time.monotonic()))

    starts: dict[int, float] = {}
    peak = 0

    def watch() -> None:
        nonlocal peak
        deadline = time.monotonic() + 30
        while len(spans) < 5 and time.monotonic() < deadline:
            peak = max(peak, children.slots.busy)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=one) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    watcher.join(10)
    assert len(spans) == 5 and peak == 2
    assert os.getpid()  # the test process itself is untouched
