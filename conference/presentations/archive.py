"""The event's slide archive: one zip per set of published decks, built once in a native thread, kept as a file.

The content key is a hash of everything the zip holds (each published deck's id, SHA-256, size, name in the
zip and date), computed per request from the database: a deck that is hidden, replaced, deleted or published
(also by its session ending) gives a new key at the next request, and the old archive is never served again.
The zip for a key is written in a native thread (never on the event loop) into a temporary file in the cache
folder, fsynced and renamed into place (`os.replace`); the archives of older keys are then removed. One build
per key at a time: in this process a registry of running builds, between worker processes a `flock` on the
event's lock file. A request waits a bounded time for a running build, then answers 503 with `Retry-After`:
an archive that misses a published deck is never sent. A finished archive is sent as a plain file (ranges,
strong ETag = key), so a reader costs one descriptor of the shared file: no memory, no temporary file.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from flask import Flask, current_app

from conference.agenda.schedule import published_schedule
from conference.core import native
from conference.events.models import Event
from conference.extensions import socketio
from conference.presentations import services
from conference.settings import get_settings

log = logging.getLogger("conference.presentations.archive")

FORMAT_VERSION = 1  # part of the key: a change to how the zip is written makes every old archive stale
RETRY_AFTER_SECONDS = 5
FAILURE_PAUSE_SECONDS = 10.0  # after a failed build (e.g. a full disk) requests get 503 this long, then retry
COPY_CHUNK = 1024 * 1024
PART_PREFIX = ".build-"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry

_lock = threading.Lock()


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


@dataclass
class _Build:
    done: threading.Event = field(default_factory=threading.Event)
    failed_at: float | None = None


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


def locate(event: Event) -> Ready | Pending | None:
    """The archive of the event's published decks now: ready, being built, or None when there are none.

    Starts the build when nobody has; waits for it at most `ARCHIVE_WAIT_SECONDS`.
    """
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
    build = _start(app, manifest, path)
    limit = get_settings(app).archive_wait_seconds
    if limit > 0:
        build.done.wait(limit)
    return _open(path, manifest.key) or Pending(RETRY_AFTER_SECONDS)


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


def _builds(app: Flask) -> dict[Path, _Build]:
    return app.extensions.setdefault("presentation_archive_builds", {})  # type: ignore[no-any-return]


def _start(app: Flask, manifest: Manifest, path: Path) -> _Build:
    """The running (or recently failed) build of `path`, or a new one started as a background task."""
    builds = _builds(app)
    with _lock:
        build = builds.get(path)
        if build is not None and (build.failed_at is None
                                  or time.monotonic() - build.failed_at < FAILURE_PAUSE_SECONDS):
            return build
        build = builds[path] = _Build()
    socketio.start_background_task(_run_build, app, manifest, path, build)
    return build


def _run_build(app: Flask, manifest: Manifest, path: Path, build: _Build) -> None:
    """Background task: the zip is written in a native thread; this (green) task only waits for it."""
    started = time.monotonic()
    try:
        built = native.submit(build_archive, manifest, path)()
    except Exception as error:  # noqa: BLE001 - a failed build is answered with 503, never with a half file
        log.warning("slide archive %s failed: %s", path.name, error)
        with _lock:
            build.failed_at = time.monotonic()
    else:
        if built:
            log.info("slide archive %s built: %d decks, %d bytes in %.1f s", path.name, len(manifest.members),
                     manifest.total_bytes, time.monotonic() - started)
        with _lock:
            _builds(app).pop(path, None)
    finally:
        build.done.set()


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
