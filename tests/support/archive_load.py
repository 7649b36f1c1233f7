"""Slide archive downloads against a real server: published decks of generated PDFs, parallel and stalled
readers, a /healthz probe, and the server's open files (used by tests/security/test_archive.py and
bench/archive_bench.py)."""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.pdfs import padded_pdf_stream
from tests.support.server import RunningServer, run_cli

DEMO_SLUG = "digitalkonferenz-2027"
ARCHIVE_PATH = f"/events/{DEMO_SLUG}/presentations/archive.zip"
BOUNDARY = "----archive-load-boundary"
CHUNK = 1024 * 1024


def pdf_stream(size: int, seed: int) -> Iterator[bytes]:
    """`size` bytes that pass the server's PDF checks (head, filler comment lines, trailer); each seed differs."""
    yield from padded_pdf_stream(size, f"deck {seed}")


def _multipart(size: int, seed: int) -> Iterator[bytes]:
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"deck-{seed}.pdf\"\r\n"
           f"Content-Type: application/pdf\r\n\r\n").encode()
    yield from pdf_stream(size, seed)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def organiser_token(server: RunningServer) -> str:
    return run_cli(["users", "token", "--email", "orga@demo.invalid"], server.env).stdout.split()[-1]


def publish_decks(server: RunningServer, *, count: int, size: int) -> list[int]:
    """Upload `count` decks of `size` bytes to different demo sessions and publish them by hand."""
    token = organiser_token(server)
    auth = {"Authorization": f"Bearer {token}"}
    sessions = requests.get(f"{server.url}/api/v1/events/{DEMO_SLUG}/sessions", timeout=30).json()["sessions"]
    targets = [s["id"] for s in sessions if s["kind"] != "break" and not s["cancelled"]][:count]
    assert len(targets) == count, sessions
    ids = []
    for seed, session_id in enumerate(targets):
        response = requests.post(f"{server.url}/api/v1/sessions/{session_id}/presentations",
                                 data=_multipart(size, seed), timeout=120,  # chunked
                                 headers={**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert response.status_code == 201, response.text[:300]
        deck = response.json()
        published = requests.patch(f"{server.url}/api/v1/sessions/{session_id}/presentations/{deck['id']}",
                                   json={"visibility_mode": "published"}, headers=auth, timeout=30)
        assert published.status_code == 200, published.text[:300]
        ids.append(deck["id"])
    return ids


def open_files(pid: int, under: Path) -> list[str]:
    """Targets of the process's descriptors below `under` (deleted files end in ' (deleted)')."""
    result = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith(str(under)):
            result.append(target)
    return result


@dataclass
class LoadResult:
    health_latencies: list[float] = field(default_factory=list)
    health_slowest: list[tuple[float, float]] = field(default_factory=list)  # (latency, seconds into the load)
    health_failures: int = 0
    downloads: list[tuple[int, int, str]] = field(default_factory=list)  # status, bytes, ETag
    stalled_bytes: list[int] = field(default_factory=list)
    open_during: list[str] = field(default_factory=list)  # the server's open files below the instance, mid-load
    open_after_timeout: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        values = sorted(self.health_latencies) or [0.0]
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        return (f"/healthz during the downloads: {len(self.health_latencies)} probes, median "
                f"{statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms, "
                f"{self.health_failures} failed; downloads {[d[0] for d in self.downloads]} in {self.seconds:.1f} s; "
                f"slowest probes (ms at s): {[(round(v * 1000), round(t, 1)) for v, t in self.health_slowest]}")


def _stalled_reader(url: str, read_bytes: int, ready: threading.Barrier, release: threading.Event,
                    result: LoadResult) -> None:
    """Request the archive, read the head of the answer, then stop reading (keep the connection open)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET {ARCHIVE_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        received = 0
        while received < read_bytes:
            data = sock.recv(65536)
            if not data:
                break
            received += len(data)
        result.stalled_bytes.append(received)
        ready.wait()
        release.wait(120)


def run_load(server: RunningServer, *, readers: int, stalled: int, timeout_wait: float = 0.0) -> LoadResult:
    """`readers` full downloads and `stalled` readers that stop after 64 KB, at once, while /healthz is probed
    every 20 ms. With `timeout_wait`, the server's open files are listed again that many seconds after the
    full downloads ended (the stalled readers still connected)."""
    result = LoadResult()
    stop = threading.Event()
    release = threading.Event()
    ready = threading.Barrier(stalled + 1)
    instance = server.instance.resolve()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                requests.get(f"{server.url}/healthz", timeout=30).raise_for_status()
                latency = time.monotonic() - started
                result.health_latencies.append(latency)
                result.health_slowest = sorted([*result.health_slowest, (latency, started - begun)])[-3:]
            except requests.RequestException:
                result.health_failures += 1
            time.sleep(0.02)

    def download() -> None:
        with requests.get(server.url + ARCHIVE_PATH, stream=True, timeout=120) as response:
            size = sum(len(chunk) for chunk in response.iter_content(CHUNK))
            result.downloads.append((response.status_code, size, response.headers.get("ETag", "")))

    begun = time.monotonic()
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    time.sleep(0.3)  # a few probes of the idle server first
    started = time.monotonic()
    holders = [threading.Thread(target=_stalled_reader, args=(server.url, 64 * 1024, ready, release, result),
                                daemon=True) for _ in range(stalled)]
    fetchers = [threading.Thread(target=download, daemon=True) for _ in range(readers)]
    for thread in (*holders, *fetchers):
        thread.start()
    ready.wait(timeout=120)
    for thread in fetchers:
        thread.join(timeout=180)
    result.seconds = time.monotonic() - started
    result.open_during = open_files(server.process.pid, instance)
    if timeout_wait:
        time.sleep(timeout_wait)
        result.open_after_timeout = open_files(server.process.pid, instance)
    stop.set()
    release.set()
    prober.join(timeout=60)
    for thread in holders:
        thread.join(timeout=30)
    return result
