"""The slide archive is a job of the queue (issue 22): one job per content key, counted against JOB_WORKERS with
previews, shown on the organiser's jobs page; requests wait for that job."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from conference.core import children
from conference.core.jobs import Job
from conference.extensions import db
from conference.presentations import archive
from conference.presentations import services as presentation_services
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import api_token_for
from tests.fixtures.presentations import pdf_bytes, upload
from tests.security.test_archive import add_deck, archive_url, get, members


@pytest.fixture
def app_settings(tmp_path: Path) -> dict[str, Any]:
    return settings_for_tests(tmp_path, JOB_WORKERS=1, ARCHIVE_WAIT_SECONDS=0)


@pytest.fixture(autouse=True)
def _slots_back() -> Any:
    yield
    children.configure(workers=2)  # as the other tests' applications have it


def job_rows() -> dict[str, tuple[str, Any]]:
    db.session.expire_all()
    rows = db.session.scalars(select(Job).order_by(Job.id)).all()
    db.session.rollback()
    return {f"{row.kind}#{row.id}": (row.status, row.finished_at) for row in rows}


def wait_until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, job_rows()
        time.sleep(0.05)


def test_with_one_worker_a_preview_waits_while_the_archive_builds(app: Flask, client: Any, slides_stage: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", pdf_bytes("eins"))
    gate = threading.Event()
    real_write = archive.write_archive

    def held_write(manifest: Any, target: Any) -> None:
        assert gate.wait(30)  # the build takes as long as the test wants
        real_write(manifest, target)

    monkeypatch.setattr(archive, "write_archive", held_write)
    first = get(client, archive_url(slides_stage))
    assert first.status_code == 503 and first.headers["Retry-After"]
    wait_until(lambda: any(k.startswith("presentation.archive") and s == "running" for k, (s, _f) in
                           job_rows().items()))
    again = get(client, archive_url(slides_stage))  # a second request waits for the same job
    assert again.status_code == 503

    response = upload(client, slides_stage.other_session.id, "zwei.pdf", pdf_bytes("zwei"),
                      token=api_token_for(slides_stage.organiser))
    assert response.status_code == 201
    time.sleep(1.0)  # time enough for a second worker to start the preview, if there were one
    rows = job_rows()
    previews = [s for k, (s, _f) in rows.items() if k.startswith("presentation.preview")]
    assert previews[-1] == "queued", rows
    assert sum(1 for s, _f in rows.values() if s == "running") == 1
    assert sum(1 for k in rows if k.startswith("presentation.archive")) == 1  # one job for one key

    gate.set()
    presentation_services.wait_for_background_tasks()
    wait_until(lambda: all(s == "done" for s, _f in job_rows().values()))
    rows = job_rows()
    archive_done = next(f for k, (_s, f) in rows.items() if k.startswith("presentation.archive"))
    preview_done = [f for k, (_s, f) in rows.items() if k.startswith("presentation.preview")][-1]
    assert preview_done >= archive_done
    ready = get(client, archive_url(slides_stage))
    assert ready.status_code == 200 and set(members(ready.data)) == {"folien.pdf"}


def test_archive_jobs_are_on_the_organisers_jobs_page(app: Flask, client: Any, slides_stage: Any) -> None:
    from tests.fixtures.accounts import login

    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", pdf_bytes("eins"))
    assert get(client, archive_url(slides_stage)).status_code == 503
    presentation_services.wait_for_background_tasks()
    organiser = app.test_client()
    login(organiser, "orga@example.org")
    page = organiser.get(f"/manage/events/{slides_stage.event.slug}/jobs").get_data(as_text=True)
    assert "archive.zip" in page
