"""The read side of the agenda: the schedule as objects, the published schedule (cached) and the session payload.

A release stores the programme as a JSON snapshot (`snapshots`). Public pages, exports and the API read the
latest snapshot (parsed once per process and cached by release id: releases never change), so a page costs the
same few queries whatever the number of sessions. The day grid and filters are in `grid`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from conference.agenda.models import AgendaRelease, SessionKind
from conference.agenda.snapshots import build_snapshot, frame_snapshot, load_sessions, room_guid, snapshot_session
from conference.core.cache import ExpiringCache
from conference.core.timeutil import isoformat
from conference.events.models import Event
from conference.extensions import db

CACHE_SIZE = 32
#: How long before its start a session page switches to the stage (player and chat first, details below).
STAGE_LEAD = timedelta(minutes=15)


# --- the schedule as objects for pages, exports and the API -------------------------------------


@dataclass(frozen=True)
class PRoom:
    id: int
    name: str
    position: int
    stream_kind: str | None
    stream_url: str | None
    guid: str


@dataclass(frozen=True)
class PTrack:
    id: int
    name: str
    color: str


@dataclass(frozen=True)
class PSpeaker:
    id: int
    name: str
    display_name: str
    role: str
    organisation: str
    position: str


@dataclass(frozen=True)
class PSlot:
    id: int
    room: PRoom
    start_at: datetime
    end_at: datetime

    def overlaps(self, start_at: datetime, end_at: datetime) -> bool:
        return self.start_at < end_at and start_at < self.end_at


@dataclass
class PSession:
    id: int
    guid: str
    title: str
    abstract: str
    kind: str
    language: str
    track: PTrack | None
    cancelled: bool
    speakers: list[PSpeaker]
    slots: list[PSlot]
    search_text: str = ""
    recording_url: str | None = None

    @property
    def is_break(self) -> bool:
        return self.kind == SessionKind.BREAK

    def has_ended(self, now: datetime) -> bool:
        end = self.end_at
        return end is not None and end <= now

    def is_on_stage(self, now: datetime) -> bool:
        """Live, or starting within STAGE_LEAD: the session page then puts player and chat first."""
        if self.cancelled or self.is_break:
            return False
        return any(slot.start_at - STAGE_LEAD <= now < slot.end_at for slot in self.slots)

    @property
    def start_at(self) -> datetime | None:
        return self.slots[0].start_at if self.slots else None

    @property
    def end_at(self) -> datetime | None:
        return max(s.end_at for s in self.slots) if self.slots else None

    @property
    def rooms(self) -> list[PRoom]:
        seen: dict[int, PRoom] = {}
        for slot in self.slots:
            seen.setdefault(slot.room.id, slot.room)
        return sorted(seen.values(), key=lambda r: (r.position, r.id))

    @property
    def room(self) -> PRoom | None:
        rooms = self.rooms
        return rooms[0] if len(rooms) == 1 else None

    @property
    def chat_room(self) -> str:
        return f"session:{self.id}"

    def is_live(self, now: datetime) -> bool:
        return any(s.start_at <= now < s.end_at for s in self.slots)


@dataclass
class Schedule:
    """A programme: the latest release (`version` set) or the working agenda (`version` None)."""

    event_slug: str
    timezone: str
    version: str | None
    published_at: datetime | None
    rooms: list[PRoom]
    tracks: list[PTrack]
    sessions: list[PSession]
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def session(self, session_id: int) -> PSession | None:
        return self._by_id.get(session_id)

    def __post_init__(self) -> None:
        self._by_id = {s.id: s for s in self.sessions}
        self._days: list[date] | None = None  # a release is cached per process: computed once, not per page
        self._by_speaker: dict[int, list[tuple[PSession, str]]] | None = None

    def sessions_of_speaker(self, speaker_id: int) -> list[tuple[PSession, str]]:
        """(session, role) of every session that names the speaker and is not cancelled, by start."""
        if self._by_speaker is None:
            index: dict[int, list[tuple[PSession, str]]] = {}
            for entry in self.sessions:  # sorted by start already
                if not entry.cancelled:
                    for person in entry.speakers:
                        index.setdefault(person.id, []).append((entry, person.role))
            self._by_speaker = index
        return list(self._by_speaker.get(speaker_id, []))

    def speaker_ids(self) -> frozenset[int]:
        """Everyone named by a session that is not cancelled."""
        self.sessions_of_speaker(0)
        assert self._by_speaker is not None
        return frozenset(self._by_speaker)

    def local_day(self, value: datetime) -> date:
        return value.astimezone(self.zone).date()

    def days(self) -> list[date]:
        if self._days is None:
            self._days = sorted({self.local_day(s.start_at) for s in self.sessions if s.start_at is not None})
        return list(self._days)

    def sessions_on(self, day: date) -> list[PSession]:
        return [s for s in self.sessions if s.start_at is not None and self.local_day(s.start_at) == day]


def schedule_from_snapshot(data: dict[str, Any], *, event_slug: str, timezone: str, version: str | None,
                           published_at: datetime | None, changes: dict[str, Any] | None = None) -> Schedule:
    rooms = {r["id"]: PRoom(r["id"], r["name"], r["position"], r["stream_kind"], r["stream_url"],
                            room_guid(event_slug, r["id"])) for r in data["rooms"]}
    tracks = {t["id"]: PTrack(t["id"], t["name"], t["color"]) for t in data["tracks"]}
    sessions = []
    for s in data["sessions"]:
        speakers = [PSpeaker(p["id"], p["name"], p["display_name"], p["role"], p["organisation"], p["position"])
                    for p in s["speakers"]]
        slots = [PSlot(slot["id"], rooms[slot["room_id"]], datetime.fromisoformat(slot["start"]),
                       datetime.fromisoformat(slot["end"])) for slot in s["slots"] if slot["room_id"] in rooms]
        slots.sort(key=lambda slot: (slot.start_at, slot.room.position, slot.room.id))
        search = " ".join([s["title"], s["abstract"], *(p.name for p in speakers)]).casefold()
        sessions.append(PSession(s["id"], s["guid"], s["title"], s["abstract"], s["kind"], s["language"],
                                 tracks.get(s["track_id"]) if s["track_id"] else None, s["cancelled"], speakers,
                                 slots, search, s.get("recording_url")))
    sessions.sort(key=lambda s: (s.start_at or datetime.max.replace(tzinfo=ZoneInfo("UTC")),
                                 s.rooms[0].position if s.rooms else 0, s.id))
    return Schedule(event_slug, timezone, version, published_at,
                    sorted(rooms.values(), key=lambda r: (r.position, r.id)), list(tracks.values()), sessions,
                    changes or {})


def _cache() -> ExpiringCache[tuple[int, datetime, str, str], Schedule]:
    """Parsed releases of this app (a release never changes; the key also guards against a reset database)."""
    cache = current_app.extensions.get("agenda_schedule_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("agenda_schedule_cache", ExpiringCache(max_entries=CACHE_SIZE))
    return cache  # type: ignore[no-any-return]


def latest_release_number(event: Event) -> int | None:
    """The sequence number of the event's latest release (None before the first): what visitors without a live
    connection poll to learn that the agenda changed. One indexed query, no draft data."""
    return db.session.scalar(select(AgendaRelease.sequence).where(AgendaRelease.event_id == event.id)
                             .order_by(AgendaRelease.sequence.desc()).limit(1))


def published_schedule(event: Event) -> Schedule | None:
    """The latest release of the event, or None before the first one. One small query on a cache hit."""
    row = db.session.execute(
        select(AgendaRelease.id, AgendaRelease.name, AgendaRelease.published_at, AgendaRelease.changes)
        .where(AgendaRelease.event_id == event.id).order_by(AgendaRelease.sequence.desc()).limit(1)
    ).first()
    if row is None:
        return None
    release_id, name, published_at, changes = row
    # The zone and slug are part of the key: an organiser may change the event's zone after a release.
    key = (release_id, published_at, event.timezone, event.slug)

    def parse() -> Schedule:
        text = db.session.scalar(select(AgendaRelease.snapshot).where(AgendaRelease.id == release_id))
        return schedule_from_snapshot(json.loads(text or "{}"), event_slug=event.slug, timezone=event.timezone,
                                      version=name, published_at=published_at, changes=json.loads(changes))

    return _cache().get(key, parse)


def working_schedule(event: Event, *, ids: list[int] | None = None) -> Schedule:
    """The working agenda (organisers' view), including unscheduled sessions."""
    if ids is None:
        data = build_snapshot(event, include_unscheduled=True)
    else:
        data = {**frame_snapshot(event), "sessions": [snapshot_session(s) for s in load_sessions(event, ids=ids)]}
    return schedule_from_snapshot(data, event_slug=event.slug, timezone=event.timezone, version=None,
                                  published_at=None)


# --- payloads -----------------------------------------------------------------------------------


def session_payload(entry: PSession, schedule: Schedule) -> dict[str, Any]:
    """The one JSON shape of a session (API list, API writes, socket broadcasts)."""
    tz = schedule.timezone
    room = entry.room
    return {
        "id": entry.id,
        "guid": entry.guid,
        "title": entry.title,
        "kind": entry.kind,
        "start": isoformat(entry.start_at, tz) if entry.start_at else None,
        "end": isoformat(entry.end_at, tz) if entry.end_at else None,
        "room": room.name if room else None,
        "track": entry.track.name if entry.track else None,
        "language": entry.language,
        "speakers": [{"id": p.id, "name": p.display_name, "role": p.role} for p in entry.speakers],
        "chat_room": entry.chat_room,
        "cancelled": entry.cancelled,
        "abstract": entry.abstract,
        "slots": [{"id": s.id, "room_id": s.room.id, "room": s.room.name, "start": isoformat(s.start_at, tz),
                   "end": isoformat(s.end_at, tz)} for s in entry.slots],
    }

