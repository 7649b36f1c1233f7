"""Receiving slide files: streamed multipart parsing into a temporary file, checks by name and by content.

Nothing here holds the body in memory: the multipart stream is decoded piece by piece, written to a temporary
file in the upload folder and hashed on the way. Office files are checked as archives (central directory
only) before a single member is read.
"""

from __future__ import annotations

import contextlib
import contextvars
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
from typing import IO, Any

from flask_babel import gettext as _
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData, State

from conference.core import native
from conference.presentations.content_check import check_content
from conference.presentations.upload_errors import (
    FileRefused,
    UploadRefused,
    UploadTooLarge,
    accepted_text,
    megabytes,
)
from conference.serving.multipart import multipart_fast_path

CHUNK_SIZE = 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the CSRF field around the file
MAX_FIELD_BYTES = 4096
MAX_FIELDS = 8
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


def receive_upload(stream: IO[bytes], *, content_type: str | None, limit: int, directory: Path,
                   on_file: Callable[[dict[str, str]], None] | None = None) -> ReceivedFile:
    """Read a multipart body from `stream` (`MultipartReceiver`) and check the file's content.

    `on_file(fields)` runs when the file part begins, with the small fields sent before it (e.g. the CSRF
    token), before a byte of the file is written. More than `limit` file bytes: `UploadTooLarge`, and the
    temporary file is gone.
    """
    receiver = MultipartReceiver(multipart_boundary(content_type), limit=limit, directory=directory,
                                 on_file=on_file)
    try:
        while not receiver.done:
            receiver.feed(stream.read(CHUNK_SIZE))
        received = receiver.finish()
    except ClientDisconnected:
        receiver.discard()
        raise UploadRefused(_("The upload was incomplete."), code="incomplete") from None
    except BaseException:
        receiver.discard()
        raise
    try:
        # Reading an office file's central directory (up to 10,000 entries) is work for a native thread; the
        # copied context carries the request's language into the messages of a refusal.
        native.submit(contextvars.copy_context().run, check_content, received.temp_path, received.file_type,
                      received.size)()
    except BaseException:
        received.discard()
        raise
    return received


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data body, or `UploadRefused`."""
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary or len(boundary) > 200:
        raise UploadRefused(_("Send the file as multipart/form-data in the field 'file'."), code="invalid_body")
    return boundary.encode("latin-1")


class MultipartReceiver:
    """One multipart/form-data body, fed in pieces of any size; knows no request and no stream.

    `feed(piece)` for each piece and `feed(b"")` at the end of the body, until `done`; then `finish()` gives
    the file. The part `file` streams to a temporary file (`FilePart`); the small fields before and after
    it are collected (`FormFields`). Any refusal raised from here has removed the temporary file already.
    `fast_path` (default: the seam's own probe, `conference.serving.multipart`) lets file data that holds no
    delimiter pass werkzeug's decoder.
    """

    def __init__(self, boundary: bytes, *, limit: int, directory: Path,
                 on_file: Callable[[dict[str, str]], None] | None = None, fast_path: bool | None = None) -> None:
        self.decoder = MultipartDecoder(boundary, max_form_memory_size=CHUNK_SIZE + MULTIPART_OVERHEAD,
                                        max_parts=MAX_FIELDS + 1)
        self.limit, self.directory, self.on_file = limit, directory, on_file
        self.fields = FormFields()
        self.file: FilePart | None = None
        self.done = False
        self.fast_path = multipart_fast_path() if fast_path is None else fast_path
        self._marker = b"--" + self.decoder.boundary
        self._tail = len(b"\r\n" + self._marker)  # a delimiter may begin in this many last bytes of a piece
        self._held = b""

    def feed(self, piece: bytes) -> None:
        """Take the next piece of the body; `b""` says that the body ended."""
        if self.done:
            return
        try:
            if piece:
                self._take(piece)
            else:
                self._end()
        except RequestEntityTooLarge:
            self.discard()
            raise UploadTooLarge(_("The file is larger than %(mb)s MB.", mb=megabytes(self.limit))) from None
        except ValueError as error:  # malformed multipart, from the decoder
            self.discard()
            raise UploadRefused(_("The upload could not be read: %(error)s", error=str(error)),
                                code="invalid_body") from None
        except BaseException:
            self.discard()
            raise

    def finish(self) -> ReceivedFile:
        """The received file, once the body is `done`; `UploadRefused` (missing_file) if it had none."""
        if self.file is None or not self.file.complete:
            self.discard()
            raise UploadRefused(_("Send the file in the multipart field 'file'."), field="file",
                                code="missing_file")
        return self.file.received(self.fields.values)

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()

    def _take(self, piece: bytes) -> None:
        if self._held:
            piece = self._held + piece
        cut = self._delimiter_line_cut(piece)
        piece, self._held = piece[:cut], piece[cut:]
        if not piece:
            return
        if self._past_decoder(piece):
            # Inside the file with no delimiter in sight: the piece goes straight to the file, without the
            # decoder's copies and searches (it costs a third of the upload otherwise). The decoder keeps
            # the last bytes, where a delimiter may begin, and finds the end itself.
            assert self.file is not None
            if self.decoder.buffer:
                self.file.write(bytes(self.decoder.buffer))
            self.file.write(memoryview(piece)[:-self._tail])
            self.decoder.buffer[:] = piece[-self._tail:]
        else:
            self.decoder.receive_data(piece)
            self._next_events()

    def _delimiter_line_cut(self, piece: bytes) -> int:
        """Where `piece` is cut when the body so far ends within a few bytes after a delimiter (the rest
        waits for the next piece), else its length.

        Werkzeug's decoder misreads a buffer that ends inside the closing "--" of a delimiter: it takes the CR
        of the line break before it as data (one byte too many). Given the delimiter's whole line it is right.
        """
        near = len(self._marker) + 8
        window = (bytes(self.decoder.buffer[-near:]) + piece[-near:])[-near:]
        position = window.rfind(self._marker)
        if position == -1:
            return len(piece)
        return max(0, len(piece) - len(window) + position - 2)  # with the line break before it

    def _past_decoder(self, piece: bytes) -> bool:
        return (self.fast_path and self.file is not None and not self.file.complete and not self.fields.open
                and self.decoder.state is State.DATA and len(piece) > self._tail and self._marker not in piece
                and self._marker not in bytes(self.decoder.buffer) + piece[:len(self._marker)])

    def _end(self) -> None:
        if self._held:
            self.decoder.receive_data(self._held)
            self._held = b""
            self._next_events()
        if self.file is not None and not self.file.complete:  # the body ended inside the file
            raise UploadRefused(_("The upload was incomplete."), code="incomplete")
        self.decoder.receive_data(None)
        self._next_events()
        if not self.done:
            raise UploadRefused(_("The upload was incomplete."), code="incomplete")

    def _next_events(self) -> None:
        while not self.done:
            event = self.decoder.next_event()
            if isinstance(event, NeedData):
                return
            if isinstance(event, Epilogue):
                self.done = True
            elif isinstance(event, File):
                self._begin_file(event)
            elif isinstance(event, Field):
                self.fields.begin(event.name)
            elif isinstance(event, Data):
                if self.fields.open:
                    self.fields.add(event.data, more=event.more_data)
                elif self.file is not None and not self.file.complete:
                    self.file.write(event.data)
                    if not event.more_data:
                        self.file.finish()

    def _begin_file(self, event: File) -> None:
        if event.name != "file" or self.file is not None:
            raise UploadRefused(_("Send exactly one file, in the field 'file'."), code="invalid_body")
        filename, file_type = check_filename(event.filename)
        if self.on_file is not None:
            self.on_file(self.fields.values)
        self.file = FilePart(self.directory, filename=filename, file_type=file_type, limit=self.limit)


class FormFields:
    """The small fields of the form (e.g. `csrf_token`): at most `MAX_FIELDS`, each `MAX_FIELD_BYTES`."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self._current: tuple[str, bytearray] | None = None

    @property
    def open(self) -> bool:
        return self._current is not None

    def begin(self, name: str) -> None:
        if len(self.values) >= MAX_FIELDS:
            raise UploadRefused(_("Too many form fields."), code="invalid_body")
        self._current = (name, bytearray())

    def add(self, data: bytes, *, more: bool) -> None:
        assert self._current is not None
        name, value = self._current
        value.extend(data)
        if len(value) > MAX_FIELD_BYTES:
            raise UploadRefused(_("A form field is too long."), code="invalid_body")
        if not more:
            self.values[name] = value.decode("utf-8", "replace")
            self._current = None


class FilePart:
    """The file's bytes on their way into a temporary file in `directory`: counted against `limit`, hashed,
    and on the disk once `finish()`ed. `discard()` removes the file (idempotent)."""

    def __init__(self, directory: Path, *, filename: str, file_type: str, limit: int) -> None:
        self.filename, self.file_type, self.limit = filename, file_type, limit
        handle, temp_name = tempfile.mkstemp(dir=directory, prefix=PART_PREFIX, suffix=PART_SUFFIX)
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
