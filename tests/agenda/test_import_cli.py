"""`conference agenda import EVENT FILE [--dry-run] [--remove-missing]`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select

from conference.agenda.models import ConferenceSession
from conference.extensions import db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pretalx"


def titles(event) -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(ConferenceSession.title).where(ConferenceSession.event_id == event.id)))


def test_dry_run_changes_nothing_then_import_then_sync(runner, create_event) -> None:
    event = create_event("cli-import", end=date(2027, 3, 19))
    dry = runner.invoke(args=["agenda", "import", "cli-import", str(FIXTURES / "schedule-v1.0.xml"), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "create  session  Rust for Municipal IT (line 82)" in dry.output
    assert "Dry run, nothing changed. Sessions: 5 create, 0 update, 0 cancel, 0 delete, 0 keep." in dry.output
    assert titles(event) == []
    done = runner.invoke(args=["agenda", "import", "cli-import", str(FIXTURES / "schedule-v1.0.xml")])
    assert done.exit_code == 0, done.output
    assert len(titles(event)) == 5
    sync = runner.invoke(args=["agenda", "import", "cli-import", str(FIXTURES / "schedule-v1.1.xml"),
                               "--remove-missing"])
    assert sync.exit_code == 0, sync.output
    assert "delete  session  Hands-on: Barrierefreie Formulare" in sync.output
    assert "Sessions: 0 create, 2 update, 0 cancel, 1 delete, 0 keep." in sync.output
    assert "Hands-on: Barrierefreie Formulare" not in titles(event)


def test_bad_file_and_unknown_event_fail_with_message(runner, create_event, tmp_path: Path) -> None:
    event = create_event("cli-bad")
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<schedule/>')
    result = runner.invoke(args=["agenda", "import", "cli-bad", str(bad)])
    assert result.exit_code == 1
    assert "line 2: the file declares a DTD" in result.output
    assert titles(event) == []
    missing = runner.invoke(args=["agenda", "import", "no-such-event", str(bad)])
    assert missing.exit_code == 1 and "No event with slug 'no-such-event'" in missing.output


def test_outside_the_event_days_refused(runner, create_event) -> None:
    event = create_event("cli-days", start=date(2030, 5, 1))
    result = runner.invoke(args=["agenda", "import", "cli-days", str(FIXTURES / "schedule-v1.0.xml")])
    assert result.exit_code == 1
    assert "lies outside the days of the event" in result.output
    assert titles(event) == []
