"""The multipart receiver on its own (`receiver.MultipartReceiver`): raw bodies fed in pieces, no app, no
request; each case on werkzeug's public path and on the fast path past its decoder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conference.presentations.receiver import MAX_FIELD_BYTES, MultipartReceiver
from conference.presentations.storage import ReceivedFile
from conference.presentations.upload_errors import UploadRefused, UploadTooLarge
from conference.serving.multipart import multipart_fast_path

BOUNDARY = b"b0undary"
CONTENT = b"%PDF-1.4\n" + bytes(range(32, 127)) * 2 + b"\r\n--b0undar\r\n%%EOF\n"  # ~230 bytes
# CR and LF where a parser might take them for the end of a line, of the headers or of the part.
ODD_CONTENTS = [
    b"\r\n",
    b"\r\n\r\n" + CONTENT + b"\r\n\r\n",
    b"\r" * 30 + b"\n" * 30 + b"\r\n" * 30,
    b"\r\n--" + b"\r\n-" * 20 + b"\r\n--b0undar-" + b"x--b0undary\r\n" + b"\r\n--b0undarx--",
    b"x--b0undary\r\n" + b"y" * 100 + b"\r\n--b0undaryx\r\n",
]  # a delimiter is a line break, "--", the boundary and a line break (or "--"): none of these is one


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    headers = f"Content-Disposition: {disposition}\r\n"
    if filename is not None:
        headers += "Content-Type: application/pdf\r\n"
    return b"--" + BOUNDARY + b"\r\n" + headers.encode() + b"\r\n" + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


def upload_body(content: bytes = CONTENT) -> bytes:
    return body(part("csrf_token", b"token-value"), part("file", content, "talk.pdf"),
                part("note", b"line one\r\nline two"))


def receive(data: bytes, directory: Path, *, fast: bool, pieces: list[int] | None = None,
            limit: int = 10_000, **options: object) -> ReceivedFile:
    """Feed `data` cut at the offsets in `pieces` (default: one piece), then the end of the body."""
    receiver = MultipartReceiver(BOUNDARY, limit=limit, directory=directory, fast_path=fast, **options)  # type: ignore[arg-type]
    cuts = [0, *(pieces or []), len(data)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        if start < end:
            receiver.feed(data[start:end])
    while not receiver.done:
        receiver.feed(b"")
    return receiver.finish()


def assert_received(received: ReceivedFile, content: bytes) -> None:
    try:
        assert received.temp_path.read_bytes() == content
        assert received.size == len(content)
        assert received.sha256 == hashlib.sha256(content).hexdigest()
        assert (received.filename, received.file_type) == ("talk.pdf", "pdf")
        assert received.fields == {"csrf_token": "token-value", "note": "line one\r\nline two"}
    finally:
        received.discard()


def refused(data: bytes, directory: Path, *, fast: bool, **options: object) -> UploadRefused | UploadTooLarge:
    with pytest.raises((UploadRefused, UploadTooLarge)) as caught:
        receive(data, directory, fast=fast, **options)  # type: ignore[arg-type]
    assert list(directory.iterdir()) == []  # no temporary file left behind
    return caught.value


paths = pytest.mark.parametrize("fast", [False, True], ids=["public path", "fast path"])


def test_the_installed_werkzeug_allows_the_fast_path() -> None:
    """Else the fast-path cases below would test nothing that production runs."""
    assert multipart_fast_path() is True


@paths
def test_every_cut_into_two_pieces_gives_the_same_file(tmp_path: Path, fast: bool) -> None:
    data = upload_body()
    for cut in range(1, len(data)):
        assert_received(receive(data, tmp_path, fast=fast, pieces=[cut]), CONTENT)
    assert list(tmp_path.iterdir()) == []


@paths
@pytest.mark.parametrize("size", [1, 2, 3, 5, 11, 12, 13, 14, 19, 20, 21, 31, 64, 100, 255])
def test_pieces_of_every_size_give_the_same_file(tmp_path: Path, fast: bool, size: int) -> None:
    """Sizes around a delimiter's length (12 bytes with its line break) put delimiters on every seam."""
    data = upload_body()
    assert_received(receive(data, tmp_path, fast=fast, pieces=list(range(size, len(data), size))), CONTENT)


@paths
@pytest.mark.parametrize("content", ODD_CONTENTS)
def test_line_breaks_in_odd_places_are_file_data(tmp_path: Path, fast: bool, content: bytes) -> None:
    data = upload_body(content)
    for size in (1, 7, 13, 40, len(data)):
        assert_received(receive(data, tmp_path, fast=fast, pieces=list(range(size, len(data), size))), content)


@paths
def test_preamble_and_line_breaks_around_the_parts_are_ignored(tmp_path: Path, fast: bool) -> None:
    data = b"\r\nsome preamble\r\n\r\n" + upload_body() + b"\r\nepilogue\r\n"
    assert_received(receive(data, tmp_path, fast=fast, pieces=list(range(9, len(data), 9))), CONTENT)


@paths
def test_file_at_the_limit_accepted_one_byte_over_refused(tmp_path: Path, fast: bool) -> None:
    content = b"%PDF-1.4\n" + b"p" * 5000 + b"\n%%EOF\n"
    data = body(part("file", content, "talk.pdf"))
    pieces = list(range(64, len(data), 64))
    received = receive(data, tmp_path, fast=fast, pieces=pieces, limit=len(content))
    assert received.size == len(content)
    received.discard()
    error = refused(data, tmp_path, fast=fast, pieces=pieces, limit=len(content) - 1)
    assert isinstance(error, UploadTooLarge) and error.status == 413


@paths
def test_body_without_a_file_part_is_missing_file(tmp_path: Path, fast: bool) -> None:
    error = refused(body(part("csrf_token", b"token-value")), tmp_path, fast=fast)
    assert error.code == "missing_file" and error.field == "file"


@paths
def test_field_over_its_limit_refused_at_its_limit_accepted(tmp_path: Path, fast: bool) -> None:
    at_limit = body(part("note", b"n" * MAX_FIELD_BYTES), part("file", CONTENT, "talk.pdf"))
    received = receive(at_limit, tmp_path, fast=fast, pieces=list(range(100, len(at_limit), 100)))
    assert received.fields == {"note": "n" * MAX_FIELD_BYTES}
    received.discard()
    for fields_first in (True, False):
        parts = [part("note", b"n" * (MAX_FIELD_BYTES + 1)), part("file", CONTENT, "talk.pdf")]
        data = body(*(parts if fields_first else parts[::-1]))
        error = refused(data, tmp_path, fast=fast, pieces=list(range(100, len(data), 100)))
        assert error.code == "invalid_body" and "too long" in error.message


@paths
def test_body_cut_off_anywhere_is_refused_and_leaves_nothing(tmp_path: Path, fast: bool) -> None:
    data = upload_body()
    closing = data.rindex(b"--" + BOUNDARY + b"--") + len(BOUNDARY) + 4  # the body is complete from here on
    codes = set()
    for end in range(closing):
        error = refused(data[:end], tmp_path, fast=fast, pieces=list(range(16, end, 16)))
        codes.add(error.code)
    assert codes == {"incomplete", "invalid_body"}
    inside_file = data.index(CONTENT) + 50
    assert refused(data[:inside_file], tmp_path, fast=fast).code == "incomplete"


@paths
def test_two_file_parts_are_refused(tmp_path: Path, fast: bool) -> None:
    data = body(part("file", CONTENT, "talk.pdf"), part("file", CONTENT, "again.pdf"))
    error = refused(data, tmp_path, fast=fast, pieces=list(range(50, len(data), 50)))
    assert error.code == "invalid_body" and "exactly one file" in error.message


@paths
def test_file_in_another_field_is_refused(tmp_path: Path, fast: bool) -> None:
    error = refused(body(part("attachment", CONTENT, "talk.pdf")), tmp_path, fast=fast)
    assert error.code == "invalid_body"


@paths
def test_not_multipart_at_all_is_refused(tmp_path: Path, fast: bool) -> None:
    error = refused(b"file=talk.pdf&csrf_token=x", tmp_path, fast=fast)
    assert error.code == "invalid_body"


@paths
def test_on_file_sees_the_fields_before_the_file_and_no_file_yet(tmp_path: Path, fast: bool) -> None:
    seen: list[tuple[dict[str, str], list[Path]]] = []

    def on_file(fields: dict[str, str]) -> None:
        seen.append((dict(fields), list(tmp_path.iterdir())))

    assert_received(receive(upload_body(), tmp_path, fast=fast, on_file=on_file), CONTENT)
    assert seen == [({"csrf_token": "token-value"}, [])]


@paths
def test_refusal_in_on_file_leaves_nothing(tmp_path: Path, fast: bool) -> None:
    def on_file(fields: dict[str, str]) -> None:
        raise UploadRefused("bad token", code="csrf")

    assert refused(upload_body(), tmp_path, fast=fast, on_file=on_file).code == "csrf"


@paths
def test_large_file_in_large_pieces(tmp_path: Path, fast: bool) -> None:
    """Pieces the size the server reads (1 MB) over a ~10 MB file: the fast path's own territory."""
    content = b"%PDF-1.4\n" + bytes(range(256)) * (40 * 1024) + b"\n%%EOF\n"
    data = body(part("csrf_token", b"token-value"), part("file", content, "talk.pdf"),
                part("note", b"line one\r\nline two"))
    pieces = list(range(1024 * 1024, len(data), 1024 * 1024))
    assert_received(receive(data, tmp_path, fast=fast, pieces=pieces, limit=len(content)), content)
