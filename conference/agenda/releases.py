"""Releases: the working agenda published as a named version with its change log; what the public reads.

Publishing is refused while the agenda has hard conflicts (`conflicts.agenda_problems`). The released schedule
is read back (and cached) by `schedule.published_schedule`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from conference.agenda.conflicts import agenda_problems
from conference.agenda.fields import RELEASE_NAME_MAX, clean_text
from conference.agenda.models import AgendaRelease
from conference.agenda.snapshots import build_snapshot, diff_snapshots
from conference.auth.models import User
from conference.core import after_commit
from conference.core.errors import Conflict
from conference.core.signals import agenda_released
from conference.events.models import Event
from conference.extensions import db


def latest_release(event: Event) -> AgendaRelease | None:
    return db.session.scalar(select(AgendaRelease).where(AgendaRelease.event_id == event.id)
                             .order_by(AgendaRelease.sequence.desc()).limit(1))


def publish_release(event: Event, *, name: Any, actor: User | None) -> AgendaRelease:
    """Publish the working agenda as a named version with a change log against the previous release.

    Refused while the agenda has hard conflicts or when nothing changed. After commit: `agenda_released`.
    """
    name = clean_text(name, field="name", max_length=RELEASE_NAME_MAX)
    errors = [p for p in agenda_problems(event) if p.severity == "error"]
    if errors:
        raise Conflict(_("Resolve the conflicts first: %(first)s", first=errors[0].message), field="name",
                       code="agenda_has_conflicts")
    previous = latest_release(event)
    if db.session.scalar(select(AgendaRelease.id).where(AgendaRelease.event_id == event.id,
                                                        AgendaRelease.name == name)):
        raise Conflict(_("A release with this name exists already."), field="name", code="duplicate_name")
    snapshot = build_snapshot(event)
    old = json.loads(previous.snapshot) if previous else None
    if old is not None and old["sessions"] == snapshot["sessions"] and old["rooms"] == snapshot["rooms"] \
            and old["tracks"] == snapshot["tracks"]:
        raise Conflict(_("Nothing has changed since the last release."), field="name", code="no_changes")
    changes = diff_snapshots(old, snapshot)
    release = AgendaRelease(event_id=event.id, sequence=(previous.sequence + 1) if previous else 1, name=name,
                            changes=json.dumps(changes, ensure_ascii=False),
                            snapshot=json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")),
                            published_by_id=actor.id if actor is not None else None)
    db.session.add(release)
    db.session.flush()
    after_commit.defer(_announce_release, event.id, release.name, changes)
    return release


def _announce_release(event_id: int, version: str, changes: dict[str, Any]) -> None:
    agenda_released.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                         event_id=event_id, version=version, release={"version": version, "changes": changes})


def ensure_demo_release(event: Event) -> AgendaRelease | None:
    """Publish release "1.0" of the event's agenda if it has none yet (used by the demo loader)."""
    if latest_release(event) is not None:
        return None
    return publish_release(event, name="1.0", actor=None)
