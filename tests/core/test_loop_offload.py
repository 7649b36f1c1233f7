"""Nothing heavy on the event loop: while a real `conference run` checks and cleans a large PDF, renders a hard
preview, resizes a 24-megapixel photo, builds the slide archive and is backed up, the loop-lag probe sees no
stall over 100 ms that the server itself caused (its lag minus the time it waited for a CPU: the load client,
the children and the other tests share this machine's cores)."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.support.archive_load import DEMO_SLUG, organiser_token, publish_decks
from tests.support.hostile_pdfs import heavy_drawing
from tests.support.pdfs import padded_pdf
from tests.support.server import RunningServer, run_cli, running_server

HELD_LIMIT_MS = 100.0
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def stalls_during(figures: Path, action: Callable[[], Any]) -> list[dict[str, Any]]:
    """Run `action`; the probe's stalls that began while it ran (read after the probe wrote again)."""
    started = time.time()
    action()
    finished = time.time()
    deadline = time.monotonic() + 5
    while True:
        data = json.loads(figures.read_text())
        if data["written_at"] > finished + 0.3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return [s for s in data["stalls"] if s["at"] >= started]


def held(stalls: list[dict[str, Any]]) -> float:
    return max((s["lag_ms"] - s["wait_ms"] for s in stalls), default=0.0)


def browser(server: RunningServer) -> requests.Session:
    session = requests.Session()
    token = CSRF.search(session.get(f"{server.url}/login", timeout=10).text).group(1)  # type: ignore[union-attr]
    response = session.post(f"{server.url}/login", timeout=30, data={
        "email": "orga@demo.invalid", "password": "demo-passwort-2027", "csrf_token": token})
    assert response.status_code == 200 and "logout" in response.text.lower(), response.text[:300]
    return session


def large_photo() -> bytes:
    """6,000 x 4,000 pixels (the largest photo accepted), a gradient: a few MB as JPEG."""
    image = Image.linear_gradient("L").resize((6000, 4000)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70)
    assert len(out.getvalue()) < 5 * 1024 * 1024
    return out.getvalue()


@pytest.mark.server
@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_heavy_work_never_holds_the_event_loop(tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    figures = tmp_path / "loop.json"
    with running_server(tmp_path / "instance", mode, demo_attendees=5, CONFERENCE_LOOP_PROBE_FILE=str(figures),
                        CONFERENCE_LOOP_PROBE_STALL_MS="20") as server:
        token = organiser_token(server)
        auth = {"Authorization": f"Bearer {token}"}
        sessions = [s["id"] for s in requests.get(f"{server.url}/api/v1/events/{DEMO_SLUG}/sessions",
                                                  timeout=30).json()["sessions"] if s["kind"] != "break"]
        results: dict[str, list[dict[str, Any]]] = {}

        def upload(data: bytes, name: str) -> dict[str, Any]:
            response = requests.post(f"{server.url}/api/v1/sessions/{sessions[-1]}/presentations", headers=auth,
                                     files={"file": (name, data, "application/pdf")}, timeout=300)
            assert response.status_code == 201, response.text[:300]
            return response.json()  # type: ignore[no-any-return]

        big = padded_pdf(60 * 1024 * 1024, "big")
        results["PDF check and cleaning (60 MB)"] = stalls_during(figures, lambda: upload(big, "gross.pdf"))

        def preview() -> None:
            deck = upload(heavy_drawing(1), "schwer.pdf")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                decks = requests.get(f"{server.url}/api/v1/sessions/{sessions[-1]}/presentations", headers=auth,
                                     timeout=30).json()["presentations"]
                if next(d for d in decks if d["id"] == deck["id"])["thumbnail"] != "pending":
                    return
                time.sleep(0.2)
            raise AssertionError("the preview did not finish")

        results["thumbnail (400,000 paths)"] = stalls_during(figures, preview)

        client = browser(server)
        page = client.get(f"{server.url}/events/{DEMO_SLUG}/speakers", timeout=30).text
        speaker_id = re.search(rf"/events/{DEMO_SLUG}/speakers/(\d+)", page).group(1)  # type: ignore[union-attr]
        edit_url = f"{server.url}/events/{DEMO_SLUG}/speakers/{speaker_id}/edit"
        form = client.get(edit_url, timeout=30).text
        fields = {"csrf_token": CSRF.search(form).group(1),  # type: ignore[union-attr]
                  "name": re.search(r'name="name"[^>]*value="([^"]*)"', form).group(1)}  # type: ignore[union-attr]
        photo = large_photo()

        def resize_photo() -> None:
            response = client.post(edit_url, data=fields, files={"photo": ("portrait.jpg", photo, "image/jpeg")},
                                   timeout=60, allow_redirects=False)
            assert response.status_code == 303, response.text[:500]

        results["photo resizing (24 megapixels)"] = stalls_during(figures, resize_photo)

        publish_decks(server, count=3, size=40 * 1024 * 1024)

        def build_archive() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                response = requests.get(f"{server.url}/events/{DEMO_SLUG}/presentations/archive.zip", timeout=60)
                if response.status_code == 200:
                    assert len(response.content) > 120 * 1024 * 1024
                    return
                assert response.status_code == 503
            raise AssertionError("no archive")

        results["archive.zip (120 MB)"] = stalls_during(figures, build_archive)
        results["backup (conference backup)"] = stalls_during(
            figures, lambda: run_cli(["backup", str(tmp_path / "backup")], server.env, timeout=300))
        assert (tmp_path / "backup").is_dir()

    with capsys.disabled():
        for name, stalls in results.items():
            worst = max(stalls, key=lambda s: s["lag_ms"], default=None)
            print(f"\nLOOP {mode} {name}: {len(stalls)} stalls >= 20 ms, longest lag "
                  f"{worst['lag_ms'] if worst else 0:.1f} ms, longest held by the server {held(stalls):.1f} ms")
    assert {name: held(stalls) for name, stalls in results.items() if held(stalls) >= HELD_LIMIT_MS} == {}
