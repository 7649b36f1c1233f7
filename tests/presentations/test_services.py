"""Storing an upload (`versions.add_presentation`): the version number under the session's lock, nothing left
behind when it or the commit fails."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event

from conference.core.after_commit import commit
from conference.core.errors import NotAllowed
from conference.extensions import db
from conference.presentations import services, versions
from conference.presentations.models import Presentation
from conference.presentations.storage import ReceivedFile
from tests.fixtures.presentations import ppt_bytes, snapshot, upload
from tests.presentations.test_upload import api_token


def received(data: bytes, filename: str = "deck.ppt") -> ReceivedFile:
    """A file as the receiver leaves it: a temporary part file in the upload folder."""
    temp = services.presentations_dir() / f".upload-test-{secrets.token_hex(8)}.part"
    temp.write_bytes(data)
    return ReceivedFile(temp, filename, "ppt", len(data), hashlib.sha256(data).hexdigest())


def test_version_is_chosen_after_the_writer_before_it_committed(app: Flask, slides_stage) -> None:
    """Another writer holds SQLite's write lock and adds version 1; this upload waits for it and takes 2
    (choosing the number before the lock would take 1 as well and fail on the unique constraint)."""
    session = slides_stage.session
    commit()
    services.current_version(session)  # this request has read the session's versions (none) already
    other = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"), isolation_level=None,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO presentations (event_id, session_id, version, original_filename, stored_filename, file_type,"
        " size_bytes, sha256, visibility_mode, thumbnail_state, created_at) VALUES (?, ?, 1, 'first.ppt',"
        " 'first-one.ppt', 'ppt', 512, ?, 'hidden', 'none', '2027-01-01 00:00:00')",
        (session.event_id, session.id, "0" * 64))
    committer = threading.Timer(0.5, other.commit)
    committer.start()
    try:
        started = time.monotonic()
        presentation = versions.add_presentation(session, upload=received(ppt_bytes()),
                                                 actor=slides_stage.organiser)
        waited = time.monotonic() - started
        commit()
    finally:
        committer.join()
        other.close()
    assert waited >= 0.3
    assert presentation.version == 2
    assert presentation.visibility_mode == "hidden"  # the decision taken on version 1 carries over
    assert services.file_path(presentation).read_bytes() == ppt_bytes()


def test_refused_upload_removes_the_received_file(app: Flask, slides_stage) -> None:
    upload_file = received(ppt_bytes())
    with pytest.raises(NotAllowed):
        versions.add_presentation(slides_stage.session, upload=upload_file, actor=slides_stage.outsider)
    db.session.rollback()
    assert not upload_file.temp_path.exists()
    assert list(services.presentations_dir().iterdir()) == []


def test_failed_commit_leaves_no_row_and_no_file(app: Flask, client, slides_stage) -> None:
    token = api_token(slides_stage.organiser)

    def fail(_session: object) -> None:
        raise RuntimeError("the database refused the commit")

    event.listen(db.session, "before_commit", fail)
    try:
        response = upload(client, slides_stage.session.id, "deck.ppt", ppt_bytes(), token=token)
    finally:
        event.remove(db.session, "before_commit", fail)
    assert response.status_code == 500
    files, counts = snapshot(app)
    assert [name for name in files if name.startswith("presentations/")] == []
    assert counts["presentations"] == 0
    again = upload(client, slides_stage.session.id, "deck.ppt", ppt_bytes(), token=token)
    assert again.status_code == 201 and again.get_json()["version"] == 1
    stored = db.session.get(Presentation, again.get_json()["id"])
    assert stored is not None and Path(services.file_path(stored)).read_bytes() == ppt_bytes()
