"""Receiving an upload: a multipart/form-data body parsed as it streams in, its file checked by content.

Nothing here holds the body in memory: the stream is decoded piece by piece (`MultipartReceiver`), the file
part written to a temporary part file (`storage.FilePart`) and hashed on the way. Office files are checked as
archives (central directory only) before a single member is read.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from pathlib import Path
from typing import IO

from flask_babel import gettext as _
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData, State

from conference.core import native
from conference.presentations.content_check import check_content
from conference.presentations.storage import FilePart, ReceivedFile, check_filename
from conference.presentations.upload_errors import UploadRefused, UploadTooLarge, megabytes
from conference.serving.multipart import multipart_fast_path

CHUNK_SIZE = 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the CSRF field around the file
MAX_FIELD_BYTES = 4096
MAX_FIELDS = 8


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
