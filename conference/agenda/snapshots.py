"""Snapshots of the programme: the working agenda as plain data, as a release stores it, and the change log.

A release keeps its snapshot as JSON; `schedule` parses it into the objects pages read. The guids are stable
per event, so calendar and frab clients recognise rooms and people across releases.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from conference.agenda.models import ConferenceSession, Room, SessionSpeaker, Track
from conference.core.timeutil import isoformat
from conference.events.models import Event
from conference.extensions import db


def _utc(value: datetime) -> str:
    return isoformat(value, "UTC")


def room_guid(event_slug: str, room_id: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"conference:{event_slug}/rooms/{room_id}"))


def person_guid(event_slug: str, speaker_id: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"conference:{event_slug}/speakers/{speaker_id}"))


def snapshot_session(session: ConferenceSession) -> dict[str, Any]:
    """One session as plain data (UTC times); the same shape in releases and in the working agenda."""
    return {
        "id": session.id,
        "guid": session.guid,
        "title": session.title,
        "abstract": session.abstract or "",
        "kind": session.kind,
        "language": session.language,
        "track_id": session.track_id,
        "cancelled": bool(session.is_cancelled),
        "speakers": [{"id": link.speaker.id, "name": link.speaker.name,
                      "display_name": link.speaker.display_name, "role": link.role,
                      "organisation": link.speaker.organisation, "position": link.speaker.position}
                     for link in session.speakers],
        **({"recording_url": session.recording_url} if session.recording_url else {}),  # older releases lack it
        "slots": [{"id": slot.id, "room_id": slot.room_id, "start": _utc(slot.start_at), "end": _utc(slot.end_at)}
                  for slot in sorted(session.slots, key=lambda s: (s.start_at, s.room_id))],
    }


def load_sessions(event: Event, *, ids: list[int] | None = None) -> list[ConferenceSession]:
    """Sessions of the event with speakers and slots, in a constant number of queries."""
    query = (select(ConferenceSession).where(ConferenceSession.event_id == event.id)
             .options(selectinload(ConferenceSession.speakers).selectinload(SessionSpeaker.speaker),
                      selectinload(ConferenceSession.slots)))
    if ids is not None:
        query = query.where(ConferenceSession.id.in_(ids))
    return list(db.session.scalars(query.order_by(ConferenceSession.id)))


def frame_snapshot(event: Event) -> dict[str, Any]:
    """The rooms and tracks of the working agenda as plain data (the frame the sessions are placed in)."""
    rooms = db.session.scalars(select(Room).where(Room.event_id == event.id).order_by(Room.position, Room.id))
    tracks = db.session.scalars(select(Track).where(Track.event_id == event.id).order_by(Track.name, Track.id))
    return {
        "rooms": [{"id": r.id, "name": r.name, "position": r.position, "stream_kind": r.stream_kind,
                   "stream_url": r.stream_url} for r in rooms],
        "tracks": [{"id": t.id, "name": t.name, "color": t.color} for t in tracks],
    }


def build_snapshot(event: Event, *, include_unscheduled: bool = False) -> dict[str, Any]:
    """The working agenda as plain data. Releases hold only scheduled sessions."""
    frame = frame_snapshot(event)
    sessions = [snapshot_session(s) for s in load_sessions(event)]
    if not include_unscheduled:
        sessions = [s for s in sessions if s["slots"]]
    sessions.sort(key=lambda s: (s["slots"][0]["start"] if s["slots"] else "~", s["id"]))
    return {**frame, "sessions": sessions}


def diff_snapshots(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Change log: sessions added, moved (time or room), changed (content), cancelled or removed."""
    changes: dict[str, list[dict[str, Any]]] = {"added": [], "moved": [], "changed": [], "cancelled": [],
                                                "removed": []}
    before = {s["id"]: s for s in (old or {}).get("sessions", [])}
    after = {s["id"]: s for s in new["sessions"]}
    for session_id, entry in after.items():
        item = {"id": session_id, "title": entry["title"]}
        previous = before.get(session_id)
        if previous is None:
            changes["added"].append(item)
            continue
        if entry["cancelled"] and not previous["cancelled"]:
            changes["cancelled"].append(item)
            continue
        place = [(s["room_id"], s["start"], s["end"]) for s in entry["slots"]]
        if place != [(s["room_id"], s["start"], s["end"]) for s in previous["slots"]]:
            changes["moved"].append(item)
        content_keys = ("title", "abstract", "kind", "language", "track_id", "speakers", "cancelled")
        if any(entry[key] != previous[key] for key in content_keys) or \
                entry.get("recording_url") != previous.get("recording_url"):
            changes["changed"].append(item)
    for session_id, entry in before.items():
        if session_id not in after:
            changes["removed"].append({"id": session_id, "title": entry["title"]})
    return changes
