"""The session's version lock on PostgreSQL (`versions._lock_versions`): uploads take turns, rows that merely
refer to the session do not wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from conference.core.after_commit import commit
from conference.presentations import services, versions
from tests.conftest import settings_for_tests
from tests.fixtures.presentations import ppt_bytes
from tests.presentations.test_services import received

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_settings(tmp_path: Path, postgres_url: str) -> dict[str, Any]:
    return settings_for_tests(tmp_path, DATABASE_URL=postgres_url)


def test_version_is_chosen_after_the_upload_before_it_committed(app: Flask, slides_stage) -> None:
    session = slides_stage.session
    commit()
    services.current_version(session)  # this request has read the session's versions (none) already
    engine = create_engine(app.config["DATABASE_URL"])
    other = engine.connect()
    try:
        other.execute(text("SELECT id FROM conference_sessions WHERE id = :id FOR NO KEY UPDATE"),
                      {"id": session.id})
        other.execute(text(
            "INSERT INTO presentations (event_id, session_id, version, original_filename, stored_filename,"
            " file_type, size_bytes, sha256, visibility_mode, thumbnail_state, created_at) VALUES (:event, :session,"
            " 1, 'first.ppt', 'first-one.ppt', 'ppt', 512, :sha, 'hidden', 'none', now())"),
            {"event": session.event_id, "session": session.id, "sha": "0" * 64})
        committer = threading.Timer(0.5, other.commit)
        committer.start()
        started = time.monotonic()
        presentation = versions.add_presentation(session, upload=received(ppt_bytes()),
                                                 actor=slides_stage.organiser)
        waited = time.monotonic() - started
        commit()
        committer.join()
    finally:
        other.close()
        engine.dispose()
    assert waited >= 0.3
    assert (presentation.version, presentation.visibility_mode) == (2, "hidden")


def test_rows_referring_to_the_session_do_not_wait_for_an_upload(app: Flask, slides_stage) -> None:
    """A foreign key check takes `FOR KEY SHARE` on the session's row (a chat message, a slot): while an
    upload holds its lock until the commit, such a check passes at once."""
    session = slides_stage.session
    commit()
    versions.add_presentation(session, upload=received(ppt_bytes()), actor=slides_stage.organiser)
    engine = create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as other:
            other.execute(text("SET lock_timeout = '2s'"))
            found = other.execute(text("SELECT id FROM conference_sessions WHERE id = :id FOR KEY SHARE"),
                                  {"id": session.id}).scalar()
            assert found == session.id
            with pytest.raises(Exception, match="lock timeout"):  # another upload does wait
                other.execute(text("SELECT id FROM conference_sessions WHERE id = :id FOR NO KEY UPDATE"),
                              {"id": session.id})
    finally:
        engine.dispose()
    commit()
