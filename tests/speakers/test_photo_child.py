"""Untrusted images are decoded in a sandboxed child (issue 22, "bounded background work"): a pixel bomb, a
truncated file, a child that crashes, runs out of memory or of time each give a clear 400 and store nothing;
the server process itself never decodes the upload."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from conference.core import children, images
from conference.core.errors import ValidationFailed
from conference.events import branding
from conference.extensions import db
from conference.speakers.models import SpeakerProfile
from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.presentations import jpeg_with_exif, png_header_only, snapshot
from tests.speakers.test_speakers import edit_url, profile_form


@pytest.fixture
def child_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The modules of the children started (the real `run_child` runs; this only records its first argument)."""
    started: list[str] = []
    real = children.run_child

    def recording(module: str, args: list[str], **kwargs: Any) -> dict[str, Any]:
        started.append(module)
        return real(module, args, **kwargs)

    monkeypatch.setattr(children, "run_child", recording)
    return started


def post_photo(app: Flask, client: Any, stage: Any, payload: bytes) -> Any:
    login(client, "speaker@example.org")
    token = csrf_token(client, edit_url(stage))
    data = profile_form(token, name="Geändert", photo=(io.BytesIO(payload), "photo.png"))
    return client.post(edit_url(stage), data=data, content_type="multipart/form-data")


def photos(app: Flask) -> list[str]:
    folder = Path(app.config["UPLOAD_DIR"]) / "photos"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def truncated_jpeg() -> bytes:
    return jpeg_with_exif((1200, 900))[:2000]


@pytest.mark.parametrize(("payload", "message"), [
    (png_header_only(60_000, 60_000), "too many pixels"),
    (truncated_jpeg(), "must be a PNG, JPEG, WebP or GIF"),
])
def test_hostile_photo_refused_by_the_child_and_nothing_stored(app: Flask, client: Any, slides_stage: Any,
                                                               child_runs: list[str], payload: bytes,
                                                               message: str) -> None:
    before = snapshot(app)
    response = post_photo(app, client, slides_stage, payload)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert child_runs == [images.CHILD_MODULE]  # decoded (and refused) in the sandbox, not in the server
    assert snapshot(app) == before and photos(app) == []
    db.session.expire_all()
    assert db.session.get(SpeakerProfile, slides_stage.profile.id).name == "Sam Speaker"


def test_a_good_photo_goes_through_the_child(app: Flask, client: Any, slides_stage: Any,
                                             child_runs: list[str]) -> None:
    response = post_photo(app, client, slides_stage, jpeg_with_exif((3000, 2000)))
    assert response.status_code == 303
    assert child_runs == [images.CHILD_MODULE] and len(photos(app)) == 1
    with Image.open(Path(app.config["UPLOAD_DIR"]) / "photos" / photos(app)[0]) as stored:
        assert stored.size == (400, 267)


def large_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGBA").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("limits", [
    children.Limits(wall_seconds=0.05),  # killed for its time before it answers
    children.Limits(memory_bytes=160 << 20),  # 96 MB of pixels (and their conversion) do not fit
])
def test_a_child_out_of_time_or_memory_gives_a_clear_refusal(app: Flask, client: Any, slides_stage: Any,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             limits: children.Limits) -> None:
    monkeypatch.setattr(images, "child_limits", lambda app: limits)
    before = snapshot(app)
    response = post_photo(app, client, slides_stage, large_png(6000, 4000))
    assert response.status_code == 400
    assert "could not be processed" in response.get_data(as_text=True)
    assert snapshot(app) == before and photos(app) == []


def test_a_crashing_child_is_a_clean_refusal(app: Flask) -> None:
    """A child that dies (here: a recipe the child will not run, so it exits with an error) is "too_complex"."""
    with app.test_request_context(), pytest.raises(images.ImageRefused) as refused:
        images.process_in_child(io.BytesIO(jpeg_with_exif()), "os:system", max_bytes=1 << 20)
    assert refused.value.reason == "too_complex"


def test_header_image_and_logo_bombs_refused_in_the_child(app: Flask, child_runs: list[str]) -> None:
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with pytest.raises(ValidationFailed, match="too many pixels") as header:
            branding.process_header_image(io.BytesIO(png_header_only(60_000, 60_000)))
        with pytest.raises(ValidationFailed, match="too many pixels") as logo:
            branding.process_logo(io.BytesIO(png_header_only(60_000, 60_000)))
    assert (header.value.field, logo.value.field) == ("header_image", "logo")
    assert child_runs == [images.CHILD_MODULE] * 2


def test_a_flood_of_images_waits_for_the_child_slots(app: Flask, child_runs: list[str]) -> None:
    """Six photos at once in one process: never more children than JOB_WORKERS (2) at a time, all processed."""
    import threading
    import time

    children.configure(workers=2)
    results: list[bytes] = []
    peak = 0
    done = threading.Event()

    def process() -> None:
        with app.test_request_context():
            results.append(images.process_in_child(io.BytesIO(jpeg_with_exif((2400, 1600))),
                                                   "conference.speakers.photos:photo_jpeg", max_bytes=5 << 20))

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, children.slots.busy)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=process) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    watcher.join(10)
    assert len(results) == 6 and len(child_runs) == 6 and peak == 2
