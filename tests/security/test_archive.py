"""The slide archive (issue 14, finding 3): built once per set of published decks, off the event loop, served
as one shared file with ranges and a strong ETag; readers that stop cost no temporary file; /healthz stays
quick on a real server (eventlet and gevent) while archives are downloaded."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conference.core.after_commit import commit
from conference.presentations import services as presentation_services
from conference.presentations import versions
from conference.presentations.storage import ReceivedFile
from tests.fixtures.accounts import api_token_for
from tests.fixtures.presentations import Stage, pdf_bytes, upload
from tests.support.archive_load import publish_decks, run_load
from tests.support.server import running_server

ARCHIVE_LOGGER = "conference.presentations.archive"


def big_pdf(title: str, megabytes: int) -> bytes:
    """A valid PDF of about `megabytes` MB (a comment line of filler after the header)."""
    pdf = pdf_bytes(title)
    return pdf[:9] + b"%" + title.encode() * (megabytes * 1024 * 1024 // len(title)) + b"\n" + pdf[9:]


def add_deck(client: FlaskClient, stage: Stage, session: Any, filename: str, data: bytes, *,
             mode: str = "published") -> dict[str, Any]:
    """Upload like a client (small files) or, for large ones, hand the file to the same service the upload
    route calls (the test client would spool a large multipart body to a file it never closes)."""
    if len(data) < 256 * 1024:
        response = upload(client, session.id, filename, data, token=api_token_for(stage.organiser))
        assert response.status_code == 201, response.get_json()
        deck = response.get_json()
    else:
        temp = presentation_services.presentations_dir() / f".upload-test-{secrets.token_hex(8)}.part"
        temp.write_bytes(data)
        received = ReceivedFile(temp, filename, filename.rsplit(".", 1)[1], len(data),
                                hashlib.sha256(data).hexdigest())
        presentation = versions.add_presentation(session, upload=received, actor=stage.organiser)
        commit()
        deck = {"id": presentation.id, "session_id": presentation.session_id}
    set_mode(client, stage, deck, mode)
    presentation_services.wait_for_background_tasks()
    return deck


def set_mode(client: FlaskClient, stage: Stage, deck: dict[str, Any], mode: str) -> None:
    response = client.patch(f"/api/v1/sessions/{deck['session_id']}/presentations/{deck['id']}",
                            json={"visibility_mode": mode},
                            headers={"Authorization": f"Bearer {api_token_for(stage.organiser)}"})
    assert response.status_code == 200, response.get_json()


def archive_url(stage: Stage) -> str:
    return f"/events/{stage.event.slug}/presentations/archive.zip"


def get(client: FlaskClient, url: str, **kwargs: Any) -> Any:
    """GET and read the whole answer (which closes the file behind it)."""
    with client.get(url, **kwargs) as response:
        response.get_data()
    return response


def members(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name.rsplit("/", 1)[-1]: archive.read(name) for name in archive.namelist()}


def builds(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for record in caplog.records if record.name == ARCHIVE_LOGGER and "built" in record.getMessage())


def cache_folder(app: Flask) -> Path:
    """Where the archives are kept (CACHE_DIR, by default the instance's `cache` folder)."""
    return Path(app.instance_path) / "cache" / "archives"


def archive_files(app: Flask) -> list[str]:
    folder = cache_folder(app)
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".zip", ".part")) if folder.exists() else []


def deleted_files_open(under: Path) -> list[str]:
    """This process's descriptors on deleted files below `under` (what an unnamed temporary file looks like)."""
    found = []
    for entry in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith(str(under)) and target.endswith("(deleted)"):
            found.append(target)
    return found


@pytest.fixture
def archive_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=ARCHIVE_LOGGER)
    return caplog


def test_archive_built_once_for_parallel_downloads(app: Flask, client: FlaskClient, slides_stage: Stage,
                                                   archive_logs: pytest.LogCaptureFixture) -> None:
    add_deck(client, slides_stage, slides_stage.session, "erste.pdf", big_pdf("erste", 6))
    add_deck(client, slides_stage, slides_stage.other_session, "zweite.pdf", big_pdf("zweite", 6))
    url = archive_url(slides_stage)
    start = threading.Barrier(8)
    answers: list[tuple[int, str | None, bytes]] = []

    def download() -> None:
        own = app.test_client()
        start.wait(timeout=30)
        response = get(own, url)
        answers.append((response.status_code, response.headers.get("ETag"), response.data))

    threads = [threading.Thread(target=download) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [status for status, _etag, _body in answers] == [200] * 8
    assert len({etag for _status, etag, _body in answers}) == 1 and answers[0][1]
    assert len({body for _status, _etag, body in answers}) == 1
    assert set(members(answers[0][2])) == {"erste.pdf", "zweite.pdf"}
    assert builds(archive_logs) == 1
    assert get(client, archive_url(slides_stage)).status_code == 200 and builds(archive_logs) == 1
    assert len(archive_files(app)) == 1


def test_archive_key_follows_hidden_added_replaced_and_deleted_decks(app: Flask, client: FlaskClient,
                                                                    slides_stage: Stage,
                                                                    archive_logs: pytest.LogCaptureFixture) -> None:
    """Every change of the published decks is a new key at the next request; the same decks give the same key
    and the same bytes again; only the current archive stays on disk."""
    url = archive_url(slides_stage)
    first = add_deck(client, slides_stage, slides_stage.session, "erste.pdf", pdf_bytes("eins"))
    one = get(client, url)
    assert set(members(one.data)) == {"erste.pdf"}

    second = add_deck(client, slides_stage, slides_stage.other_session, "zweite.pdf", pdf_bytes("zwei"))
    two = get(client, url)
    assert set(members(two.data)) == {"erste.pdf", "zweite.pdf"} and two.headers["ETag"] != one.headers["ETag"]

    set_mode(client, slides_stage, second, "hidden")
    hidden = get(client, url)
    assert set(members(hidden.data)) == {"erste.pdf"}
    assert hidden.headers["ETag"] == one.headers["ETag"] and hidden.data == one.data  # rebuilt, byte for byte

    replaced = add_deck(client, slides_stage, slides_stage.session, "erste-v2.pdf", pdf_bytes("eins v2"))
    three = get(client, url)
    assert members(three.data) == {"erste-v2.pdf": pdf_bytes("eins v2")}

    token = api_token_for(slides_stage.organiser)
    deleted = client.delete(f"/api/v1/sessions/{replaced['session_id']}/presentations/{replaced['id']}",
                            headers={"Authorization": f"Bearer {token}"})
    assert deleted.status_code == 204
    four = get(client, url)
    assert members(four.data) == {"erste.pdf": pdf_bytes("eins")} and four.headers["ETag"] == one.headers["ETag"]
    assert len({one.headers["ETag"], two.headers["ETag"], three.headers["ETag"]}) == 3

    set_mode(client, slides_stage, first, "hidden")
    assert get(client, url).status_code == 404
    assert archive_files(app) == []  # nothing published: no archive kept either
    assert builds(archive_logs) == 5


def test_archive_range_request_answers_206_with_the_right_bytes(client: FlaskClient, slides_stage: Stage) -> None:
    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", big_pdf("range", 1))
    url = archive_url(slides_stage)
    whole = get(client, url)
    body, etag = whole.data, whole.headers["ETag"]
    assert whole.headers["Accept-Ranges"] == "bytes" and int(whole.headers["Content-Length"]) == len(body)

    part = get(client, url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == body[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(body)}"
    tail = get(client, url, headers={"Range": "bytes=-22"})
    assert tail.status_code == 206 and tail.data == body[-22:]  # the zip's end record
    resumed = get(client, url, headers={"Range": f"bytes={len(body) - 100}-", "If-Range": etag})
    assert resumed.status_code == 206 and resumed.data == body[-100:]
    changed = get(client, url, headers={"Range": "bytes=0-9", "If-Range": '"an-older-archive"'})
    assert changed.status_code == 200 and changed.data == body
    assert get(client, url, headers={"Range": f"bytes={len(body) + 10}-"}).status_code == 416


def test_archive_etag_is_strong_and_if_none_match_answers_304(client: FlaskClient, slides_stage: Stage) -> None:
    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", pdf_bytes("etag"))
    url = archive_url(slides_stage)
    first = get(client, url)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = get(client, url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert get(client, url, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_archive_readers_that_stop_leave_no_temporary_files(app: Flask, client: FlaskClient, slides_stage: Stage,
                                                            tmp_path: Path) -> None:
    """Five readers take the first piece and stop: they share the one archive file, none has a file of its own."""
    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", big_pdf("stalled", 2))
    url = archive_url(slides_stage)
    stalled = []
    try:
        for _ in range(5):
            response = client.get(url, buffered=False)
            assert response.status_code == 200
            next(iter(response.response))  # the first piece, then nothing more
            stalled.append(response)
        assert deleted_files_open(tmp_path) == []
        assert len(archive_files(app)) == 1
        assert sorted(p.name for p in presentation_services.presentations_dir(app).iterdir()
                      if p.name.startswith(".")) == []
    finally:
        for response in stalled:
            response.close()


def test_archive_being_built_answers_503_with_retry_after(app: Flask, client: FlaskClient, slides_stage: Stage,
                                                          archive_logs: pytest.LogCaptureFixture) -> None:
    """With no waiting allowed, the first request starts the build and says when to come back; an archive
    without a published deck is never sent meanwhile."""
    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", big_pdf("pending", 8))
    app.config["ARCHIVE_WAIT_SECONDS"] = 0
    url = archive_url(slides_stage)
    first = get(client, url, headers={"Accept": "application/json"})
    assert first.status_code == 503 and int(first.headers["Retry-After"]) > 0
    assert first.get_json()["error"] == "archive_pending" and "being prepared" in first.get_json()["message"]
    deadline = time.monotonic() + 30
    response = first
    while response.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
        response = get(client, url)
    assert response.status_code == 200 and set(members(response.data)) == {"folien.pdf"}
    assert builds(archive_logs) == 1


def test_archive_failed_build_answers_503_and_leaves_no_file(app: Flask, client: FlaskClient, slides_stage: Stage,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             archive_logs: pytest.LogCaptureFixture) -> None:
    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", pdf_bytes("fails"))
    folder = cache_folder(app)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("a file where the folder should be")  # the build cannot create its folder
    url = archive_url(slides_stage)
    failed = get(client, url)
    assert failed.status_code == 503 and failed.headers["Retry-After"]
    assert any("failed" in r.getMessage() for r in archive_logs.records if r.name == ARCHIVE_LOGGER)
    assert folder.read_text() == "a file where the folder should be"
    folder.unlink()
    # Retry at once instead of after the pause that spares a failing disk a build per request.
    monkeypatch.setattr("conference.presentations.archive.FAILURE_PAUSE_SECONDS", 0.0)
    assert get(client, url).status_code == 200 and builds(archive_logs) == 1


def test_builds_of_one_event_in_several_workers_write_once(app: Flask, client: FlaskClient,
                                                           slides_stage: Stage) -> None:
    """Workers share the cache folder: simultaneous builds of one archive (each with its own descriptor of the
    event's lock file, as separate processes have) write it once; the others find it there."""
    from conference.presentations.archive import archive_dir, archive_path, build_archive, manifest_for

    add_deck(client, slides_stage, slides_stage.session, "folien.pdf", big_pdf("workers", 4))
    manifest = manifest_for(slides_stage.event)
    path = archive_path(archive_dir(app), manifest)
    start = threading.Barrier(4)
    results: list[bool] = []

    def build() -> None:
        start.wait(timeout=30)
        results.append(build_archive(manifest, path))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False, False, False, True]
    assert archive_files(app) == [path.name]
    assert members(path.read_bytes()) == {"folien.pdf": big_pdf("workers", 4)}


# --- a real server ------------------------------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_archive_downloads_keep_the_server_responsive(tmp_path: Path, async_mode: str) -> None:
    """Five downloads and three readers that stop after 64 KB of a ~25 MB archive, at once: one build in a
    native thread, /healthz answers throughout, the stalled readers share the one archive file (no deleted
    temporary files held open) and are disconnected by the socket timeout."""
    size = 8 * 1024 * 1024
    with running_server(tmp_path / "instance", async_mode, demo_attendees=2, CONFERENCE_SOCKET_TIMEOUT="3",
                        CONFERENCE_PRESENTATION_MAX_BYTES=str(size + 1024)) as server:
        publish_decks(server, count=3, size=size)
        result = run_load(server, readers=5, stalled=3, timeout_wait=6)
        cache = server.instance.resolve() / "cache" / "archives"
        stored = sorted(p.name for p in cache.iterdir() if p.suffix in (".zip", ".part"))
    print(f"{async_mode}: {result.summary()}")  # the figures for the report (pytest -s)

    assert [status for status, _size, _etag in result.downloads] == [200] * 5
    assert len({(size, etag) for _status, size, etag in result.downloads}) == 1 and result.downloads[0][2]
    assert result.downloads[0][1] > 3 * size
    assert len(stored) == 1 and stored[0].endswith(".zip"), stored  # one build, no temporary file left
    assert [name for name in result.open_during if name.endswith("(deleted)")] == []
    assert {name for name in result.open_during if "/cache/" in name} <= {str(cache / stored[0])}
    # The stalled readers were cut off after 3 s without progress.
    assert [name for name in result.open_after_timeout if "/cache/" in name or "(deleted)" in name] == []
    assert result.health_failures == 0 and len(result.health_latencies) > 10
    assert max(result.health_latencies) < 2.0, result.summary()
