"""The upload benchmark in smoke mode (real server process), and the demo slides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from conference.events.models import Event
from conference.extensions import db
from conference.presentations.models import Presentation
from conference.presentations.services import file_path, published_presentations

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.server
@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_upload_bench_smoke_meets_goals(mode: str) -> None:
    """Also proves the upload path (native-thread hashing and writing) under both async servers."""
    result = subprocess.run([sys.executable, "bench/upload_bench.py", "--smoke", "--mode", mode], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refused with 413" in result.stdout and "memory and refusal goals met" in result.stdout


def test_demo_presentations_are_real_pdfs_with_previews(app) -> None:
    from conference.demo import DEMO_SLUG, load_demo
    from conference.presentations.demo import load_demo_presentations

    load_demo(attendees=0)  # loads the two demo decks
    event = db.session.scalar(select(Event).where(Event.slug == DEMO_SLUG))
    assert db.session.query(Presentation).count() == 2
    assert load_demo_presentations(event) == 0  # idempotent
    decks = db.session.scalars(select(Presentation)).all()
    assert {d.thumbnail_state for d in decks} == {"ready"}
    assert all(file_path(d).read_bytes().startswith(b"%PDF-1.4") for d in decks)
    assert [d.original_filename for d in published_presentations(event)] == ["potenzialstudie-zwischenstand.pdf"]
