"""Slide files on their way to the disk: accepted names, temporary part files and their locks.

A part file is written and hashed in a native thread (`_PipelinedFile`) and held under an exclusive lock for
as long as its worker lives, so a killed worker's leftovers can be told apart and cleared
(`remove_stale_parts`). The multipart body itself is read in `receiver`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import secrets
import tempfile
import unicodedata
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from conference.core import native
from conference.presentations.upload_errors import (
    FileRefused,
    UploadTooLarge,
    accepted_text,
    megabytes,
)

MAX_FILENAME_LENGTH = 200

ALLOWED_TYPES = ("pdf", "pptx", "odp", "ppt", "key")
# Names like `talk.html.pdf` or `x.exe.pptx` are refused: they are made to mislead people and tools.
RISKY_INNER_SUFFIXES = frozenset({
    "html", "htm", "xhtml", "shtml", "svg", "svgz", "js", "mjs", "php", "phtml", "asp", "aspx", "jsp", "cgi",
    "exe", "com", "bat", "cmd", "scr", "msi", "ps1", "vbs", "sh", "jar", "hta", "xml", "swf", "pif", "lnk",
})


@dataclass
class ReceivedFile:
    """A completely received upload in a temporary file; `discard()` removes it, `move_to()` keeps it."""

    temp_path: Path
    filename: str
    file_type: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)
    lock: Any = field(default=None, repr=False, compare=False)
    removed: list[str] = field(default_factory=list)  # active content taken out of a PDF (`previews`)

    def discard(self) -> None:
        self.temp_path.unlink(missing_ok=True)
        if self.lock is not None:
            self.lock.release()  # an unlinked file keeps its space until its last descriptor closes


PART_PREFIX, PART_SUFFIX = ".upload-", ".part"


class _PipelinedFile:
    """Hashes and writes the file's pieces in a native thread while the next pieces arrive from the socket.

    Hashing (hashlib) and disk writes release the GIL, so they run on the second core beside the socket
    reads instead of after them. Pieces go over in batches of a few megabytes (each hand-over is a trip
    through the event loop), with one batch in flight at a time: memory stays bounded to two batches.
    """

    BATCH_BYTES = 4 * 1024 * 1024

    def __init__(self, descriptor: int) -> None:
        self.file = io.FileIO(descriptor, "wb")
        self.digest = hashlib.sha256()
        self._batch: list[bytes | memoryview] = []
        self._batch_bytes = 0
        self._in_flight: Callable[[], Any] | None = None

    def write(self, piece: bytes | memoryview) -> None:
        self._batch.append(piece)
        self._batch_bytes += len(piece)
        if self._batch_bytes >= self.BATCH_BYTES:
            self._hand_over()

    def finish(self) -> None:
        """Everything written and on the disk; the file is closed."""
        self._hand_over()
        self._wait()
        native.submit(os.fsync, self.file.fileno())()
        self.file.close()

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self.file.close()

    def _hand_over(self) -> None:
        self._wait()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._in_flight = native.submit(self._store, batch)

    def _wait(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight()

    def _store(self, pieces: list[bytes | memoryview]) -> None:
        for piece in pieces:
            self.digest.update(piece)
            view = memoryview(piece)
            while view:
                view = view[self.file.write(view) or 0:]


def _hold_part(path: str) -> Any:
    """An exclusive lock on a temporary upload for as long as this process works on it (or lives).

    The lock belongs to the file, not its name, and the kernel drops it when the process dies: a part file
    nobody holds is the remains of a killed worker, which `remove_stale_parts` clears at the next start.
    """
    descriptor = os.open(path, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return _PartLock(descriptor)


class _PartLock:
    def __init__(self, descriptor: int) -> None:
        self.release = weakref.finalize(self, os.close, descriptor)  # at the latest when collected


def remove_stale_parts(directory: Path) -> int:
    """Delete temporary uploads that no live process holds (a worker was killed mid-upload)."""
    removed = 0
    for path in directory.glob(f"{PART_PREFIX}*{PART_SUFFIX}"):
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # an upload in progress in another worker
        else:
            path.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(descriptor)
    return removed


def check_filename(raw: str) -> tuple[str, str]:
    """The display name and lower-case type for an uploaded file name, or `UploadRefused` saying why."""
    name = unicodedata.normalize("NFC", raw or "").strip()
    if not name:
        raise FileRefused(_("The file has no name. %(accepted)s", accepted=accepted_text()), field="file")
    if len(name) > MAX_FILENAME_LENGTH:
        raise FileRefused(_("The file name may have at most %(n)d characters.", n=MAX_FILENAME_LENGTH),
                            field="file")
    if "/" in name or "\\" in name or name.startswith(".") or ".." in name:
        raise FileRefused(_("The file name must not contain a path."), field="file", code="invalid_filename")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") for ch in name) or '"' in name:
        raise FileRefused(_("The file name contains characters that are not allowed."), field="file",
                            code="invalid_filename")
    stem, dot, suffix = name.rpartition(".")
    file_type = suffix.lower()
    if not dot or not stem.strip() or file_type not in ALLOWED_TYPES:
        raise FileRefused(_("This type of file is not accepted. %(accepted)s", accepted=accepted_text()),
                            field="file", code="unsupported_type")
    inner = {part.strip().lower() for part in stem.split(".")[1:]}
    if inner & RISKY_INNER_SUFFIXES:
        raise FileRefused(_("File names with a second, misleading extension are not accepted."), field="file",
                            code="invalid_filename")
    return name, file_type


class FilePart:
    """The file's bytes on their way into a temporary file in `directory`: counted against `limit`, hashed,
    and on the disk once `finish()`ed. `discard()` removes the file (idempotent)."""

    def __init__(self, directory: Path, *, filename: str, file_type: str, limit: int) -> None:
        self.filename, self.file_type, self.limit = filename, file_type, limit
        # Creating a file takes the file system's journal, which waits behind other uploads' syncs: a native
        # thread does it. (Removing and renaming stay on the loop: they can run inside a write transaction,
        # and a green switch there would leave SQLite's lock held while another green thread waits for it.)
        handle, temp_name = native.submit(tempfile.mkstemp, PART_SUFFIX, PART_PREFIX, str(directory))()
        self.path = Path(temp_name)
        self.size = 0
        self.sha256 = ""
        self._sink: _PipelinedFile | None = _PipelinedFile(handle)
        try:
            self._lock = _hold_part(temp_name)
        except BaseException:
            self._sink.close()
            self.path.unlink(missing_ok=True)
            raise

    @property
    def complete(self) -> bool:
        return self._sink is None

    def write(self, piece: bytes | memoryview) -> None:
        assert self._sink is not None
        self.size += len(piece)
        if self.size > self.limit:
            raise UploadTooLarge(_("The file is larger than %(mb)s MB.", mb=megabytes(self.limit)))
        self._sink.write(piece)

    def finish(self) -> None:
        assert self._sink is not None
        self._sink.finish()
        self.sha256, self._sink = self._sink.digest.hexdigest(), None

    def received(self, fields: dict[str, str]) -> ReceivedFile:
        return ReceivedFile(self.path, self.filename, self.file_type, self.size, self.sha256, fields, self._lock)

    def discard(self) -> None:
        if self._sink is not None:
            with contextlib.suppress(OSError):  # a full disk fails the final flush too; the file goes anyway
                self._sink.close()
            self._sink = None
        self.path.unlink(missing_ok=True)
        self._lock.release()


def new_stored_name(file_type: str) -> str:
    return f"{secrets.token_hex(16)}.{file_type}"
