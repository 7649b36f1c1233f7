"""The event's slide archive: one zip per set of published decks, built once by a job, kept as a file.

The content key is a hash of everything the zip holds (each published deck's id, SHA-256, size, name in the
zip and date), computed per request from the database: a deck that is hidden, replaced, deleted or published
(also by its session ending) gives a new key at the next request, and the old archive is never served again.
The zip for a key is built by a job of the queue (`presentation.archive`, one per key: a request that finds
one queued or running waits for that one), so builds count against JOB_WORKERS with previews and the rest; the
job writes it in a native thread (never on the event loop) into a temporary file in the cache folder, fsynced
and renamed into place (`os.replace`); the archives of older keys are then removed. Between worker processes
a `flock` on the event's lock file keeps two builds of one event apart. A request waits a bounded time
(ARCHIVE_WAIT_SECONDS) for the build, then answers 503 with `Retry-After`: an archive that misses a published
deck is never sent. A finished archive is sent as a plain file (ranges, strong ETag = key), so a reader costs
one descriptor of the shared file: no memory, no temporary file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from flask import Flask, current_app
from sqlalchemy import select

from conference.agenda.schedule import published_schedule
from conference.core import jobs, native
from conference.core.db import utcnow
from conference.events.models import Event
from conference.extensions import db
from conference.presentations import services
from conference.settings import get_settings

log = logging.getLogger("conference.presentations.archive")

FORMAT_VERSION = 1  # part of the key: a change to how the zip is written makes every old archive stale
RETRY_AFTER_SECONDS = 5
FAILURE_PAUSE_SECONDS = 10.0  # after a failed build (e.g. a full disk) requests get 503 this long, then retry
COPY_CHUNK = 1024 * 1024
PART_PREFIX = ".build-"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry

ARCHIVE_JOB = "presentation.archive"
REQUEST_GRACE_SECONDS = 5.0  # a build queued here is not visible to other requests until its commit
WAIT_SLICE_SECONDS = 0.25  # a waiting request looks at the file this often (or when woken)
JOB_LOOK_SECONDS = 1.0  # ... and at the job's row this often (a build in another process may have failed)

_lock = threading.Lock()
_requested: dict[str, float] = {}  # key -> when a request of this process queued its build
_finished: dict[str, threading.Event] = {}  # key -> set when a build of this process ends


def register_jobs() -> None:
    jobs.register(ARCHIVE_JOB, run_build)


@dataclass(frozen=True)
class Member:
    """One deck in the zip."""

    presentation_id: int
    name: str  # path inside the zip
    source: str  # the stored file
    size: int
    sha256: str
    date_time: tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class Manifest:
    """What the archive of an event holds right now; `key` names it."""

    event_id: int
    members: tuple[Member, ...]

    @property
    def key(self) -> str:
        content = json.dumps([FORMAT_VERSION, self.event_id, [
            [m.presentation_id, m.sha256, m.size, m.name, m.date_time] for m in self.members]])
        return hashlib.sha256(content.encode()).hexdigest()[:40]

    @property
    def total_bytes(self) -> int:
        return sum(m.size for m in self.members)


@dataclass(frozen=True)
class Ready:
    """A complete archive, opened (the caller sends and closes `file`)."""

    file: IO[bytes]
    key: str
    modified: datetime


@dataclass(frozen=True)
class Pending:
    """The archive for the current decks is still being built."""

    retry_after: int


@dataclass(frozen=True)
class Building:
    """The archive's build job is queued or running; `payload` names it (event and key)."""

    path: Path
    key: str
    payload: str


def manifest_for(event: Event) -> Manifest:
    """The published decks of `event` whose files exist, with their names in the zip.

    A session's title and order come from the latest agenda release where it is in one (what the public agenda
    shows), otherwise from the session itself.
    """
    released = published_schedule(event)
    members: list[Member] = []
    used: set[str] = set()
    for number, presentation in enumerate(services.published_presentations(event), start=1):
        path = services.file_path(presentation)
        if not path.exists():
            continue
        entry = released.session(presentation.session_id) if released is not None else None
        raw_title = entry.title if entry is not None else presentation.session.title
        title = "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in raw_title).strip()[:80]
        name = f"{number:02d} {title}/{presentation.original_filename}"
        while name in used:
            name = f"{number:02d}-{len(used)} {title}/{presentation.original_filename}"
        used.add(name)
        made = presentation.created_at
        date_time = (made.year, made.month, made.day, made.hour, made.minute, made.second) \
            if made.year >= ZIP_EPOCH[0] else ZIP_EPOCH
        members.append(Member(presentation.id, name, str(path), presentation.size_bytes, presentation.sha256,
                              date_time))
    return Manifest(event.id, tuple(members))


def archive_dir(app: Flask | None = None) -> Path:
    """Rebuilt on demand, so outside the upload folder (which backups copy)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    assert app is not None
    return Path(get_settings(app).cache_dir or Path(app.instance_path) / "cache") / "archives"


def archive_path(directory: Path, manifest: Manifest) -> Path:
    return directory / f"event-{manifest.event_id}-{manifest.key}.zip"


def locate(event: Event) -> Ready | Pending | Building | None:
    """The archive of the event's published decks now: ready, being built (`Building`: its job is queued in this
    transaction; commit, then `wait_for`), paused after a failed build (`Pending`), or None when there are none."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    manifest = manifest_for(event)
    directory = archive_dir(app)
    if not manifest.members:
        remove_archives(directory, event.id)
        return None
    path = archive_path(directory, manifest)
    ready = _open(path, manifest.key)
    if ready is not None:
        return ready
    payload = _payload(manifest)
    latest = _latest_job(payload)
    if latest is not None and latest.status in (jobs.JobStatus.QUEUED, jobs.JobStatus.RUNNING):
        return Building(path, manifest.key, payload)
    if latest is not None and latest.status == jobs.JobStatus.FAILED and latest.finished_at is not None \
            and (utcnow() - latest.finished_at).total_seconds() < FAILURE_PAUSE_SECONDS:
        return Pending(RETRY_AFTER_SECONDS)
    with _lock:  # a build queued by another request of this process whose commit is not visible yet
        requested = _requested.get(manifest.key)
        if requested is not None and time.monotonic() - requested < REQUEST_GRACE_SECONDS:
            return Building(path, manifest.key, payload)
        _requested[manifest.key] = time.monotonic()
    jobs.enqueue(ARCHIVE_JOB, json.loads(payload), event_id=event.id, label="archive.zip", max_attempts=1)
    return Building(path, manifest.key, payload)


def wait_for(building: Building) -> Ready | Pending:
    """After the commit that queued (or found) the build: wait for it at most `ARCHIVE_WAIT_SECONDS`, without a
    transaction open while waiting; Pending when the time is up or the build failed."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    deadline = time.monotonic() + get_settings(app).archive_wait_seconds
    next_look = 0.0
    signal = _signal(building.key)
    while True:
        ready = _open(building.path, building.key)
        if ready is not None:
            return ready
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Pending(RETRY_AFTER_SECONDS)
        if signal.is_set() or time.monotonic() >= next_look:  # the job's row: once a second, or when woken
            if signal.is_set():
                signal = _signal(building.key)
            next_look = time.monotonic() + JOB_LOOK_SECONDS
            latest = _latest_job(building.payload)
            db.session.rollback()
            if latest is not None and latest.status in (jobs.JobStatus.DONE, jobs.JobStatus.FAILED):
                ready = _open(building.path, building.key)
                return ready or Pending(RETRY_AFTER_SECONDS)  # failed, or the decks changed before it ran
        signal.wait(min(WAIT_SLICE_SECONDS, remaining))  # green under eventlet and gevent


def _signal(key: str) -> threading.Event:
    """Set when a build of `key` ends in this process."""
    with _lock:
        return _finished.setdefault(key, threading.Event())


def remove_archives(directory: Path, event_id: int, *, keep: Path | None = None) -> None:
    for old in directory.glob(f"event-{event_id}-*.zip"):
        if old != keep:
            old.unlink(missing_ok=True)


def _open(path: Path, key: str) -> Ready | None:
    try:
        handle = path.open("rb")
    except (FileNotFoundError, NotADirectoryError):
        return None
    status = os.fstat(handle.fileno())  # the opened file: still whole if a newer build removes the name now
    return Ready(handle, key, datetime.fromtimestamp(status.st_mtime, UTC))


def _payload(manifest: Manifest) -> str:
    return json.dumps({"event_id": manifest.event_id, "key": manifest.key}, sort_keys=True)


def _latest_job(payload: str) -> jobs.Job | None:
    """The newest build job of one archive (the payload names event and key; the event's index finds it)."""
    event_id = int(json.loads(payload)["event_id"])
    return db.session.scalar(select(jobs.Job).where(jobs.Job.event_id == event_id, jobs.Job.kind == ARCHIVE_JOB,
                                                    jobs.Job.payload == payload)
                             .order_by(jobs.Job.id.desc()).limit(1).execution_options(populate_existing=True))


def run_build(app: Flask, payload: dict[str, Any]) -> None:
    """Job: write the zip of the event's published decks, if they are still the ones the job was queued for.

    The zip is written in a native thread (I/O and the stored entries release the GIL); this runner task only
    waits for it, and while it runs the job counts against JOB_WORKERS like any other.
    """
    key = str(payload["key"])
    try:
        event = db.session.get(Event, int(payload["event_id"]))
        manifest = manifest_for(event) if event is not None else None
        db.session.rollback()  # no transaction open while the zip is written
        if manifest is None or manifest.key != key or not manifest.members:
            return  # the decks changed before the build ran: the next request asks for the new set
        path = archive_path(archive_dir(app), manifest)
        started = time.monotonic()
        try:
            built = native.submit(build_archive, manifest, path)()
        except Exception as error:  # noqa: BLE001 - a failed build is answered with 503, never with a half file
            log.warning("slide archive %s failed: %s", path.name, error)
            raise jobs.JobFailed(f"archive failed: {type(error).__name__}: {error}"[:500]) from None
        if built:
            log.info("slide archive %s built: %d decks, %d bytes in %.1f s", path.name, len(manifest.members),
                     manifest.total_bytes, time.monotonic() - started)
    finally:
        with _lock:
            _requested.pop(key, None)
            signal = _finished.pop(key, None)
        if signal is not None:
            signal.set()


def build_archive(manifest: Manifest, path: Path) -> bool:
    """Write the zip for `manifest` to `path` unless it is there; True if this call wrote it.

    Runs in a native thread (no application context). The event's lock file makes builds of one event wait
    for each other across worker processes; the temporary file of a killed build is removed by the next one.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    lock = os.open(directory / f".event-{manifest.event_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return False  # another worker built it meanwhile
        prefix = f"{PART_PREFIX}{manifest.event_id}-"
        for stale in directory.glob(f"{prefix}*"):
            stale.unlink(missing_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".part")
        try:
            with os.fdopen(handle, "w+b") as target:
                write_archive(manifest, target)
                target.flush()
                os.fsync(target.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        remove_archives(directory, manifest.event_id, keep=path)
        return True
    finally:
        os.close(lock)  # and with it the flock


def write_archive(manifest: Manifest, target: IO[bytes]) -> None:
    """The decks, stored (slides are compressed already), with fixed dates and modes: the same key gives the
    same bytes in every worker, so ranges and ETags agree whichever worker answers."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for member in manifest.members:
            info = zipfile.ZipInfo(member.name, date_time=member.date_time)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = member.size  # decides ZIP64 for large decks before the first byte
            with open(member.source, "rb") as source, archive.open(info, "w") as sink:
                shutil.copyfileobj(source, sink, COPY_CHUNK)
