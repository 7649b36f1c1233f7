"""Streaming receipt of uploads: the fast lane for file data must find every delimiter the decoder would."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from conference.core import native
from conference.presentations import receiver, storage
from conference.presentations.receiver import receive_upload
from conference.presentations.upload_errors import UploadRefused, UploadTooLarge

BOUNDARY = "b0undary"
DELIMITER = b"\r\n--" + BOUNDARY.encode()

# File contents that look like the end of the part to a careless parser; each is file data.
TRICKY_CONTENTS = [
    b"%PDF-1.4\n" + b"a" * 300 + b"\n%%EOF\n",
    b"%PDF-1.4\n" + b"x\r\n--b0undar" + b"y" * 50 + b"\r\n--b0undarx--\r\n" + b"z" * 90 + b"\n%%EOF\n",
    b"%PDF-1.4\n" + (b"--b0undary" + b"q" * 7) * 12 + b"\r\n-" + b"\r\n--" + b"\n%%EOF\n",
    b"%PDF-1.4\n" + b"\r" * 40 + b"\n" * 40 + b"\r\n--b0undary is mentioned\n" * 3 + b"%%EOF\n",
]


def body(content: bytes, *, field_after: bool = False) -> bytes:
    parts = [b"--b0undary\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\ntoken-value\r\n",
             b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"talk.pdf\"\r\n"
             b"Content-Type: application/pdf\r\n\r\n" + content + b"\r\n"]
    if field_after:
        parts.append(b"--b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nafter the file\r\n")
    return b"".join(parts) + b"--b0undary--\r\n"


def receive(data: bytes, directory: Path, *, limit: int = 10_000) -> storage.ReceivedFile:
    return receive_upload(io.BytesIO(data), content_type=f"multipart/form-data; boundary={BOUNDARY}",
                          limit=limit, directory=directory)


@pytest.mark.parametrize("content", TRICKY_CONTENTS)
def test_file_data_survives_every_chunk_seam(tmp_path: Path, monkeypatch, content: bytes) -> None:
    """Chunk sizes from just above a delimiter's length: delimiters and look-alikes fall on every seam."""
    for chunk_size in range(len(DELIMITER) + 1, 80):
        monkeypatch.setattr(receiver, "CHUNK_SIZE", chunk_size)
        for field_after in (False, True):
            received = receive(body(content, field_after=field_after), tmp_path)
            try:
                assert received.temp_path.read_bytes() == content, chunk_size
                assert received.sha256 == hashlib.sha256(content).hexdigest()
                assert received.size == len(content)
                assert received.fields["csrf_token"] == "token-value"
                if field_after:
                    assert received.fields["note"] == "after the file"
            finally:
                received.discard()
    assert list(tmp_path.iterdir()) == []


def test_large_file_goes_through_the_fast_lane_in_batches(tmp_path: Path) -> None:
    content = b"%PDF-1.4\n" + bytes(range(256)) * (40 * 1024) + b"\n%%EOF\n"  # ~10 MB, several batches
    received = receive(body(content), tmp_path, limit=len(content))
    try:
        assert received.sha256 == hashlib.sha256(content).hexdigest()
        assert received.temp_path.stat().st_size == len(content)
    finally:
        received.discard()


def test_limit_enforced_in_the_fast_lane_and_nothing_left(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(receiver, "CHUNK_SIZE", 64)
    content = b"%PDF-1.4\n" + b"p" * 5000 + b"\n%%EOF\n"
    with pytest.raises(UploadTooLarge):
        receive(body(content), tmp_path, limit=len(content) - 1)
    assert list(tmp_path.iterdir()) == []


def test_body_cut_off_inside_the_file_is_incomplete_and_nothing_left(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(receiver, "CHUNK_SIZE", 64)
    data = body(b"%PDF-1.4\n" + b"p" * 5000 + b"\n%%EOF\n")
    with pytest.raises(UploadRefused) as refused:
        receive(data[:3000], tmp_path)
    assert refused.value.code == "incomplete"
    assert list(tmp_path.iterdir()) == []


def test_native_submit_runs_beside_the_caller_and_reports_errors() -> None:
    import threading

    seen: list[str] = []
    wait = native.submit(lambda: seen.append(threading.current_thread().name) or 42)
    assert wait() == 42 and seen[0] != threading.current_thread().name

    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        native.submit(broken)()
