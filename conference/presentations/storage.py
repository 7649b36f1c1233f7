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
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from flask_babel import gettext as _
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData, State

from conference.core import native
from conference.core.errors import DomainError, ValidationFailed
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
HTML_MARKERS = (b"<html", b"<script", b"<!doctype", b"<body", b"<head", b"<iframe", b"<svg", b"<?xml-stylesheet")

ZIP_MAX_ENTRIES = 10_000
ZIP_MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # uncompressed, all members together
ZIP_MAX_RATIO = 200  # per member larger than 1 MB uncompressed
ZIP_MAX_METADATA_BYTES = 1024 * 1024  # [Content_Types].xml, mimetype
OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
PPTX_CONTENT_TYPES = (
    b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    b"application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml",
)
ODP_MIMETYPE = b"application/vnd.oasis.opendocument.presentation"


class UploadRefused(ValidationFailed):
    code = "invalid_file"


class FileRefused(UploadRefused):
    """A well-formed upload whose file is not accepted (name, type, content): 422, while a malformed multipart
    body stays 400 (the API's schema can describe the one, not the other)."""

    status = 422


class UploadTooLarge(DomainError):
    code = "too_large"
    status = 413


def accepted_text() -> str:
    return _("Accepted are PDF (.pdf), PowerPoint (.pptx, .ppt), OpenDocument (.odp) and Keynote (.key) files.")


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
    """Decode a multipart body from `stream`; the part `file` goes to a temporary file in `directory`.

    `on_file(fields)` runs when the file part begins, with the small fields sent before it (e.g. the CSRF
    token), before a byte of the file is written. More than `limit` file bytes: `UploadTooLarge`, and the
    temporary file is gone.
    """
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary or len(boundary) > 200:
        raise UploadRefused(_("Send the file as multipart/form-data in the field 'file'."), code="invalid_body")
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=CHUNK_SIZE + MULTIPART_OVERHEAD,
                               max_parts=MAX_FIELDS + 1)
    fields: dict[str, str] = {}
    current_field: tuple[str, bytearray] | None = None
    sink: _PipelinedFile | None = None
    temp_path: Path | None = None
    sha256 = ""
    size = 0
    display_name = file_type = ""
    done = False
    lock: Any = None
    marker = b"--" + decoder.boundary
    fast_path = multipart_fast_path()  # a seam with werkzeug's decoder (conference/serving/multipart.py)
    held_back = len(b"\r\n" + marker)  # a delimiter may begin in this many last bytes of a chunk

    def take_file_data(piece: bytes | memoryview) -> None:
        nonlocal size
        size += len(piece)
        if size > limit:
            raise UploadTooLarge(_("The file is larger than %(mb)s MB.", mb=_megabytes(limit)))
        assert sink is not None
        sink.write(piece)

    try:
        while not done:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                chunk = stream.read(CHUNK_SIZE)
                if not chunk:
                    if decoder.complete or sink is not None:  # the body ended, or ended inside the file
                        raise UploadRefused(_("The upload was incomplete."), code="incomplete")
                    decoder.receive_data(None)
                elif (fast_path and sink is not None and current_field is None and decoder.state is State.DATA
                      and len(chunk) > held_back and marker not in chunk
                      and marker not in bytes(decoder.buffer) + chunk[:len(marker)]):
                    # Inside the file with no delimiter in sight: the chunk goes straight to the file, without
                    # the decoder's copies and searches (it costs a third of the upload otherwise). The decoder
                    # keeps the last bytes, where a delimiter may begin, and finds the end itself.
                    if decoder.buffer:
                        take_file_data(bytes(decoder.buffer))
                    take_file_data(memoryview(chunk)[:-held_back])
                    decoder.buffer[:] = chunk[-held_back:]
                else:
                    decoder.receive_data(_through_delimiter(chunk, marker, stream))
            elif isinstance(event, File):
                if event.name != "file" or sink is not None or temp_path is not None:
                    raise UploadRefused(_("Send exactly one file, in the field 'file'."), code="invalid_body")
                display_name, file_type = check_filename(event.filename)
                if on_file is not None:
                    on_file(fields)
                handle, temp_name = tempfile.mkstemp(dir=directory, prefix=PART_PREFIX, suffix=PART_SUFFIX)
                temp_path = Path(temp_name)
                sink = _PipelinedFile(handle)
                lock = _hold_part(temp_name)
            elif isinstance(event, Field):
                if len(fields) >= MAX_FIELDS:
                    raise UploadRefused(_("Too many form fields."), code="invalid_body")
                current_field = (event.name, bytearray())
            elif isinstance(event, Data):
                if sink is not None and current_field is None:
                    take_file_data(event.data)
                    if not event.more_data:
                        sink.finish()
                        sha256, sink = sink.digest.hexdigest(), None
                elif current_field is not None:
                    current_field[1].extend(event.data)
                    if len(current_field[1]) > MAX_FIELD_BYTES:
                        raise UploadRefused(_("A form field is too long."), code="invalid_body")
                    if not event.more_data:
                        fields[current_field[0]] = current_field[1].decode("utf-8", "replace")
                        current_field = None
            elif isinstance(event, Epilogue):
                done = True
    except RequestEntityTooLarge:
        _remove(sink, temp_path, lock)
        raise UploadTooLarge(_("The file is larger than %(mb)s MB.", mb=_megabytes(limit))) from None
    except ClientDisconnected:
        _remove(sink, temp_path, lock)
        raise UploadRefused(_("The upload was incomplete."), code="incomplete") from None
    except ValueError as error:  # malformed multipart from the decoder
        _remove(sink, temp_path, lock)
        raise UploadRefused(_("The upload could not be read: %(error)s", error=str(error)),
                            code="invalid_body") from None
    except BaseException:
        _remove(sink, temp_path, lock)
        raise
    if temp_path is None or sink is not None:
        _remove(sink, temp_path, lock)
        raise UploadRefused(_("Send the file in the multipart field 'file'."), field="file", code="missing_file")
    received = ReceivedFile(temp_path, display_name, file_type, size, sha256, fields, lock)
    try:
        # Reading an office file's central directory (up to 10,000 entries) is work for a native thread; the
        # copied context carries the request's language into the messages of a refusal.
        native.submit(contextvars.copy_context().run, check_content, temp_path, file_type, size)()
    except BaseException:
        received.discard()
        raise
    return received


def _through_delimiter(chunk: bytes, marker: bytes, stream: IO[bytes]) -> bytes:
    """`chunk`, extended while it ends within a few bytes after a delimiter.

    Werkzeug's decoder misreads a chunk that ends inside the closing "--" of a delimiter: it keeps the CR of
    the line break before it as file data (one byte too many). Given the delimiter's whole line it is right.
    """
    while (position := chunk.rfind(marker)) != -1 and len(chunk) - position < len(marker) + 8:
        more = stream.read(64)
        if not more:
            break
        chunk += more
    return chunk


def _remove(sink: _PipelinedFile | None, path: Path | None, lock: Any = None) -> None:
    if sink is not None:
        with contextlib.suppress(OSError):  # a full disk fails the final flush too; the file goes anyway
            sink.close()
    if path is not None:
        path.unlink(missing_ok=True)
    if lock is not None:
        lock.release()


def _megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):g}"


def check_content(path: Path, file_type: str, size: int) -> None:
    """The content must really be what the extension says; `UploadRefused` otherwise."""
    if size == 0:
        raise FileRefused(_("The file is empty."), field="file", code="empty_file")
    with path.open("rb") as handle:
        head = handle.read(1024)
        handle.seek(max(0, size - 1024))
        tail = handle.read(1024)
    mismatch = FileRefused(
        _("The content of the file does not match its extension .%(ext)s. %(accepted)s", ext=file_type,
          accepted=accepted_text()), field="file", code="content_mismatch")
    if file_type == "pdf":
        if not head.startswith(b"%PDF-") or b"%%EOF" not in tail:
            raise mismatch
        if any(marker in head.lower() for marker in HTML_MARKERS):
            raise FileRefused(_("The PDF file contains HTML; it is not accepted."), field="file",
                                code="content_mismatch")
        return
    if file_type == "ppt":
        if not head.startswith(OLE2_MAGIC):
            raise mismatch
        return
    if not head.startswith(b"PK\x03\x04"):
        raise mismatch
    try:
        with zipfile.ZipFile(path) as archive:
            members = check_archive(archive)
            _check_office_kind(archive, members, file_type, mismatch)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError):
        raise mismatch from None


def check_archive(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Entry count, total uncompressed size, compression ratio and paths, from the central directory only."""
    members = archive.infolist()
    if len(members) > ZIP_MAX_ENTRIES:
        raise FileRefused(_("The archive has too many entries."), field="file", code="archive_refused")
    total = 0
    for info in members:
        total += info.file_size
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":") or "\x00" in name:
            raise FileRefused(_("The archive contains a file with an unsafe path."), field="file",
                                code="archive_refused")
        if info.file_size > 1024 * 1024 and info.file_size > ZIP_MAX_RATIO * max(info.compress_size, 1):
            raise FileRefused(_("The archive is compressed suspiciously strongly (zip bomb)."), field="file",
                                code="archive_refused")
    if total > ZIP_MAX_TOTAL_BYTES:
        raise FileRefused(_("The archive would unpack to more than %(mb)s MB.",
                              mb=_megabytes(ZIP_MAX_TOTAL_BYTES)), field="file", code="archive_refused")
    return members


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > ZIP_MAX_METADATA_BYTES:
        raise FileRefused(_("The archive is not a valid presentation."), field="file", code="content_mismatch")
    with archive.open(info) as member:
        return member.read(ZIP_MAX_METADATA_BYTES + 1)[:ZIP_MAX_METADATA_BYTES]


def _check_office_kind(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], file_type: str,
                       mismatch: UploadRefused) -> None:
    by_name = {info.filename: info for info in members}
    if file_type == "pptx":
        info = by_name.get("[Content_Types].xml")
        if info is None or not any(kind in _read_small(archive, info) for kind in PPTX_CONTENT_TYPES):
            raise mismatch
    elif file_type == "odp":
        if not members or members[0].filename != "mimetype" or \
                _read_small(archive, members[0]).strip() != ODP_MIMETYPE:
            raise mismatch
    elif file_type == "key":
        if not any(info.filename.startswith("Index/") for info in members):
            raise mismatch
    else:
        raise mismatch


def new_stored_name(file_type: str) -> str:
    return f"{secrets.token_hex(16)}.{file_type}"
