"""Uploads through a real `conference run` under eventlet and gevent: with a declared length and chunked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fixtures.presentations import pdf_bytes
from tests.support.server import run_cli, running_server

BOUNDARY = "server0upload0boundary"


def body_parts(content: bytes) -> list[bytes]:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Folien.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode()
    return [head, *(content[i:i + 700_000] for i in range(0, len(content), 700_000)),
            f"\r\n--{BOUNDARY}--\r\n".encode()]


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_upload_with_declared_length_and_chunked(tmp_path: Path, async_mode: str) -> None:
    pdf = pdf_bytes()
    content = pdf[:9] + b"%" + bytes(range(256)) * 40_000 + b"\n" + pdf[9:]  # ~10 MB: several batches
    with running_server(tmp_path / "instance", async_mode, demo_attendees=2,
                        CONFERENCE_PRESENTATION_MAX_BYTES=str(len(content) + 1000)) as server:
        token = run_cli(["users", "token", "--email", "orga@demo.invalid"], server.env).stdout.split()[-1]
        sessions = requests.get(f"{server.url}/api/v1/events/digitalkonferenz-2027/sessions", timeout=10).json()
        session_id = next(s["id"] for s in sessions["sessions"] if s.get("speakers"))
        url = f"{server.url}/api/v1/sessions/{session_id}/presentations"
        folder = server.instance / "uploads" / "presentations"
        demo_files = {p.name for p in folder.iterdir()}
        headers = {"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

        declared = requests.post(url, data=b"".join(body_parts(content)), headers=headers, timeout=60)

        def chunks() -> Iterator[bytes]:
            yield from body_parts(content)

        chunked = requests.post(url, data=chunks(), headers=headers, timeout=60)  # Transfer-Encoding: chunked

        def too_large() -> Iterator[bytes]:
            yield from body_parts(content + b"%" * 2000)

        refused = requests.post(url, data=too_large(), headers=headers, timeout=60)
        stored = sorted({p.name for p in folder.iterdir()} - demo_files)

    assert refused.status_code == 413, refused.text[:300]
    assert len(stored) == 2 and not [name for name in stored if name.endswith(".part")], stored

    for response in (declared, chunked):
        assert response.status_code == 201, response.text[:300]
        assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()
        assert response.json()["size"] == len(content)
    assert [declared.json()["version"], chunked.json()["version"]] == [
        declared.json()["version"], declared.json()["version"] + 1]
