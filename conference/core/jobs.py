"""Background jobs: a queue in the database, a few workers per process, a global limit, retries with backoff.

A job is a row (`jobs`): its kind names a handler registered by a domain (`register("presentation.preview",
run)`), its payload is a small JSON object. `enqueue()` adds the row in the caller's transaction, so a job
exists exactly when what caused it was committed, and survives a restart: the runner of the next start
finds it. A job is claimed by one worker only: on SQLite one conditional UPDATE (`status='queued'` ->
`'running'`, one writer at a time); on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` under a transaction-level
advisory lock. The claim also counts the jobs running in all processes: never more than JOB_WORKERS at once,
whatever the number of worker processes.

Handlers run in the runner's background tasks (green under eventlet and gevent); they do their heavy work in
a sandboxed child (`core.children`) or a native thread (`core.native`), never on the event loop. A handler
that raises `JobFailed(permanent=True)` fails at once; any other exception is retried after JOB_RETRY_FIRST
seconds, then twice as long each time, up to the job's `max_attempts`. A job claimed by a process that died is
queued again after JOB_LEASE seconds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, func, select, text, update
from sqlalchemy.orm import Mapped, mapped_column

from conference.core import after_commit, children
from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db

log = logging.getLogger("conference.jobs")

ADVISORY_LOCK_KEY = 0x6A6F6273  # "jobs": serialises claims on PostgreSQL (count + claim in one step)


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a worker (or for its next attempt)
    RUNNING = "running"  # claimed by one worker
    DONE = "done"
    FAILED = "failed"  # refused for good, or out of attempts


class Job(db.Model):  # type: ignore[name-defined,misc]
    """One piece of background work."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    label: Mapped[str] = mapped_column(String(200), default="")  # for the jobs page, e.g. the file name
    status: Mapped[str] = mapped_column(String(10), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(60))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def data(self) -> dict[str, Any]:
        value = json.loads(self.payload or "{}")
        return value if isinstance(value, dict) else {}


class JobFailed(Exception):
    """A handler's failure; `permanent`: do not try again (e.g. a PDF that cannot be rendered)."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class JobSettings:
    """The JOB_* settings, parsed once."""

    workers: int = 2
    memory_mb: int = 512
    timeout: float = 60.0
    retry_first: float = 30.0
    poll_interval: float = 5.0
    lease: float = 900.0

    @classmethod
    def from_config(cls, config: Any) -> JobSettings:
        def number(name: str, default: float, minimum: float) -> float:
            raw = config.get(name, default)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"CONFERENCE_{name} must be a number, not {raw!r}") from None
            if value < minimum:
                raise ValueError(f"CONFERENCE_{name} must be at least {minimum:g}, not {raw!r}")
            return value

        return cls(workers=int(number("JOB_WORKERS", cls.workers, 1)),
                   memory_mb=int(number("JOB_MEMORY_MB", cls.memory_mb, 64)),
                   timeout=number("JOB_TIMEOUT", cls.timeout, 1), retry_first=number("JOB_RETRY_FIRST",
                                                                                      cls.retry_first, 0),
                   poll_interval=number("JOB_POLL_INTERVAL", cls.poll_interval, 0.05),
                   lease=number("JOB_LEASE", cls.lease, 1))

    @property
    def limits(self) -> children.Limits:
        """Per child; all children together stay within workers x memory_mb."""
        return children.Limits(memory_bytes=self.memory_mb * 1024 * 1024, cpu_seconds=max(1, int(self.timeout)),
                               wall_seconds=self.timeout)


Handler = Callable[[Any, dict[str, Any]], None]  # (app, payload); runs inside an app context
FailureHandler = Callable[[Any, dict[str, Any], str], None]  # (app, payload, error) once a job has failed


@dataclass(frozen=True)
class _Kind:
    run: Handler
    on_failure: FailureHandler | None


_kinds: dict[str, _Kind] = {}


def register(kind: str, run: Handler, *, on_failure: FailureHandler | None = None) -> None:
    """Domains name their work at start-up; `on_failure` is told once a job of theirs has failed for good."""
    _kinds[kind] = _Kind(run, on_failure)


def settings(app: Any) -> JobSettings:
    found = app.extensions.get("conference_job_settings")
    if found is None:
        found = app.extensions["conference_job_settings"] = JobSettings.from_config(app.config)
        children.configure(workers=found.workers)
    return found  # type: ignore[no-any-return]


def enqueue(kind: str, payload: dict[str, Any], *, event_id: int | None = None, label: str = "",
            max_attempts: int = 3) -> Job:
    """Add a job in the caller's transaction (flushes); a runner is woken after the commit."""
    from flask import current_app

    if kind not in _kinds:
        raise ValueError(f"no handler for job kind {kind!r}")
    job = Job(kind=kind, payload=json.dumps(payload), event_id=event_id, label=label[:200],
              max_attempts=max_attempts, next_attempt_at=utcnow())
    db.session.add(job)
    db.session.flush()
    after_commit.defer(wake, current_app._get_current_object())  # type: ignore[attr-defined]
    return job


# --- claiming and finishing -------------------------------------------------------------------------------


def requeue_abandoned(now: datetime, lease: float) -> int:
    """Claims older than the lease belong to a process that died: queue them again.

    Looked for with a read first: an UPDATE takes SQLite's write lock even when no row matches, and waiting
    for a lock another writer holds blocks the event loop for the busy timeout (every poll)."""
    abandoned = (Job.status == JobStatus.RUNNING) & (Job.claimed_at < now - timedelta(seconds=lease))
    if db.session.scalar(select(Job.id).where(abandoned).limit(1)) is None:
        db.session.rollback()
        return 0
    result: Any = db.session.execute(
        update(Job).where(Job.status == JobStatus.RUNNING, Job.claimed_at < now - timedelta(seconds=lease))
        .values(status=JobStatus.QUEUED, claimed_at=None, claimed_by=None, next_attempt_at=now)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount:
        log.warning("%s jobs claimed by a process that stopped are queued again", result.rowcount)
    return int(result.rowcount or 0)


def claim_next(now: datetime, *, limit: int, worker: str) -> Job | None:
    """The next due job, claimed for `worker`; None when nothing is due or `limit` jobs run already."""
    due = (Job.status == JobStatus.QUEUED) & (Job.next_attempt_at <= now)
    values = {"status": JobStatus.RUNNING, "claimed_at": now, "claimed_by": worker, "attempts": Job.attempts + 1}
    if db.session.scalar(select(Job.id).where(due).limit(1)) is None:  # a read: no write lock for an idle poll
        db.session.rollback()
        return None
    try:
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            running = db.session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING))
            if (running or 0) >= limit:
                db.session.rollback()
                return None
            job_id = db.session.scalar(select(Job.id).where(due).order_by(Job.next_attempt_at, Job.id).limit(1)
                                       .with_for_update(skip_locked=True))
            if job_id is None:
                db.session.rollback()
                return None
            db.session.execute(update(Job).where(Job.id == job_id).values(**values)
                               .execution_options(synchronize_session=False))
        else:  # SQLite: one statement, one writer at a time, so counting and claiming cannot interleave
            running_count = select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING)
            first = select(Job.id).where(due).order_by(Job.next_attempt_at, Job.id).limit(1)
            job_id = db.session.scalar(
                update(Job).where(Job.id == first.scalar_subquery(), Job.status == JobStatus.QUEUED,
                                  running_count.scalar_subquery() < limit)
                .values(**values).returning(Job.id).execution_options(synchronize_session=False))
            if job_id is None:
                db.session.rollback()
                return None
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return db.session.get(Job, job_id, populate_existing=True)


def finish(job: Job, error: BaseException | None, *, now: datetime, retry_first: float) -> bool:
    """Record the outcome; True when the job is over (done or failed for good)."""
    if error is None:
        job.status, job.finished_at, job.last_error = JobStatus.DONE, now, None
    else:
        job.last_error = f"{type(error).__name__}: {error}"[:500] if not isinstance(error, JobFailed) \
            else str(error)[:500]
        permanent = isinstance(error, JobFailed) and error.permanent
        if permanent or job.attempts >= job.max_attempts:
            job.status, job.finished_at = JobStatus.FAILED, now
        else:
            job.status = JobStatus.QUEUED
            job.next_attempt_at = now + timedelta(seconds=retry_first * (2 ** min(job.attempts - 1, 20)))
    job.claimed_at = None
    db.session.commit()
    return job.status != JobStatus.QUEUED


def run_one(app: Any, job: Job, job_settings: JobSettings) -> None:
    """Run a claimed job's handler and record how it went (never raises)."""
    kind, payload, job_id, kind_name = _kinds.get(job.kind), job.data, job.id, job.kind
    db.session.rollback()  # end the read: SQLite would otherwise hold its snapshot while the handler works
    error: BaseException | None = None
    try:
        if kind is None:
            raise JobFailed(f"unknown job kind {kind_name!r}")
        kind.run(app, payload)
    except Exception as failure:  # noqa: BLE001 - recorded on the job
        db.session.rollback()
        error = failure
        log.warning("job %s (%s) failed: %s", job_id, kind_name, failure)
    current = db.session.get(Job, job_id, populate_existing=True)
    if current is None:
        return
    over = finish(current, error, now=utcnow(), retry_first=job_settings.retry_first)
    if over and error is not None and kind is not None and kind.on_failure is not None:
        try:
            kind.on_failure(app, payload, str(error))
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("failure handler of job %s failed", job_id)


# --- the runner -------------------------------------------------------------------------------------------


class JobRunner:
    """`workers` background tasks that claim and run jobs. `forever`: as in `conference run` (woken by
    commits, else every JOB_POLL_INTERVAL); otherwise the tasks end when nothing is due (tests, commands)."""

    def __init__(self, app: Any, start_background_task: Callable[..., Any], *, forever: bool) -> None:
        self.app, self.forever = app, forever
        self.settings = settings(app)
        self._start = start_background_task
        self._wake = threading.Event()  # cooperative under eventlet's and gevent's monkey-patching
        self._lock = threading.Lock()
        self.tasks: list[Any] = []
        self.active = 0
        self._generation = 0

    def start(self) -> None:
        with self._lock:
            self._generation += 1
            missing = max(0, self.settings.workers - self.active)
            self.active += missing
        for number in range(missing):
            self.tasks.append(self._start(self._work, number))
        del self.tasks[:-50]

    def wake(self) -> None:
        self._wake.set()
        if not self.forever:
            self.start()

    def _work(self, number: int) -> None:
        worker = f"{os.getpid()}-{number}"
        while True:
            seen = self._generation
            try:
                with self.app.app_context():
                    if number == 0:
                        requeue_abandoned(utcnow(), self.settings.lease)
                    job = claim_next(utcnow(), limit=self.settings.workers, worker=worker)
                    if job is not None:
                        run_one(self.app, job, self.settings)
                        continue
            except Exception:  # noqa: BLE001 - the runner must outlive a database hiccup
                log.exception("job runner pass failed")
                if not self.forever:  # a passing task gives up; the next commit starts another
                    with self._lock:
                        self.active -= 1
                    return
            if not self.forever:
                with self._lock:
                    if seen == self._generation:  # nothing queued since this task last looked: done
                        self.active -= 1
                        return
                continue
            self._wake.wait(self.settings.poll_interval)
            self._wake.clear()

    def join(self, timeout: float) -> None:
        for task in list(self.tasks):
            join = getattr(task, "join", None)
            if join is not None:
                join(timeout)


def start_job_runner(app: Any, start_background_task: Callable[..., Any]) -> JobRunner:
    """The serving process's runner (runs until the process ends; picks up jobs left from before)."""
    runner = JobRunner(app, start_background_task, forever=True)
    app.extensions["conference_job_runner"] = runner
    runner.start()
    return runner


def wake(app: Any) -> None:
    """After a commit that queued a job: wake this process's runner, or run the queue in passing tasks."""
    runner = app.extensions.get("conference_job_runner")
    if runner is None:
        from conference.extensions import socketio

        runner = app.extensions["conference_job_runner"] = JobRunner(app, socketio.start_background_task,
                                                                    forever=False)
    runner.wake()


def wait_idle(app: Any, timeout: float = 30.0) -> None:
    """Join the passing tasks of a process without a serving runner (tests, commands)."""
    runner = app.extensions.get("conference_job_runner")
    if runner is not None and not runner.forever:
        runner.join(timeout)


def jobs_for(event_id: int | None, *, limit: int = 200) -> list[Job]:
    """Queued and running jobs first, then the most recent finished ones (of one event, or of all: None)."""
    query = select(Job)
    if event_id is not None:
        query = query.where(Job.event_id == event_id)
    order = func.coalesce(Job.finished_at, Job.created_at).desc()
    open_jobs = db.session.scalars(query.where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                                   .order_by(Job.id).limit(limit)).all()
    finished = db.session.scalars(query.where(Job.status.in_([JobStatus.DONE, JobStatus.FAILED]))
                                  .order_by(order, Job.id.desc()).limit(limit)).all()
    return [*open_jobs, *finished]
