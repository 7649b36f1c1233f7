"""Filters and the day grid: how the agenda pages lay out a schedule (rows of times, a column per room)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from conference.agenda.models import SessionKind
from conference.agenda.schedule import PRoom, PSession, PSlot, Schedule
from conference.core.ids import parse_id


@dataclass(frozen=True)
class Filters:
    track: int | None = None
    language: str | None = None
    kind: str | None = None
    query: str = ""

    @property
    def active(self) -> bool:
        return bool(self.track or self.language or self.kind or self.query)

    def matches(self, entry: PSession) -> bool:
        if self.track is not None and (entry.track is None or entry.track.id != self.track):
            return False
        if self.language and entry.language != self.language:
            return False
        if self.kind and entry.kind != self.kind:
            return False
        return not self.query or all(word in entry.search_text for word in self.query.casefold().split())


def parse_filters(args: Any) -> Filters:
    """Filters from query parameters; unknown or malformed values (a `track` that is not an id, see
    `conference.core.ids`) are ignored: a filter narrows a public page, it never fails it."""
    track = args.get("track", "")
    language = args.get("language", "")
    kind = args.get("kind", "")
    return Filters(track=parse_id(track),
                   language=language if language in ("de", "en") else None,
                   kind=kind if kind in set(SessionKind) else None,
                   query=args.get("q", "")[:100].strip())


@dataclass
class GridCell:
    entries: list[tuple[PSession, PSlot]]
    rowspan: int


@dataclass
class GridRow:
    start_at: datetime
    end_at: datetime
    cells: list[GridCell | None]  # None: covered by a cell of an earlier row (rowspan)


def day_grid(schedule: Schedule, day: date, filters: Filters) -> list[GridRow]:
    """Rows between consecutive start/end times of the day; a session cell spans the rows it covers."""
    rooms = schedule.rooms
    column = {room.id: i for i, room in enumerate(rooms)}
    placed = [(entry, slot) for entry in schedule.sessions_on(day) if filters.matches(entry)
              for slot in entry.slots if schedule.local_day(slot.start_at) == day]
    if not placed:
        return []
    bounds = sorted({t for _e, slot in placed for t in (slot.start_at, slot.end_at)})
    index = {t: i for i, t in enumerate(bounds)}
    rows = [GridRow(bounds[i], bounds[i + 1], [GridCell([], 1) for _ in rooms]) for i in range(len(bounds) - 1)]
    taken: dict[tuple[int, int], GridCell] = {}
    for entry, slot in sorted(placed, key=lambda p: (p[1].start_at, p[1].end_at)):
        col, first, last = column[slot.room.id], index[slot.start_at], index[slot.end_at]
        owner = taken.get((first, col))
        if owner is not None:  # an overlap (not in a published release): show both in one cell
            owner.entries.append((entry, slot))
            continue
        cell = rows[first].cells[col]
        assert cell is not None
        cell.entries.append((entry, slot))
        cell.rowspan = last - first
        for r in range(first, last):
            taken[(r, col)] = cell
            if r > first:
                rows[r].cells[col] = None
    return rows


def now_and_next(schedule: Schedule, now: datetime) -> list[tuple[PRoom, PSession | None, PSession | None]]:
    """Per room: the session running at `now` and the next one starting after it (same day or later)."""
    result = []
    for room in schedule.rooms:
        current: PSession | None = None
        upcoming: PSession | None = None
        for entry in schedule.sessions:
            if entry.cancelled:
                continue
            for slot in entry.slots:
                if slot.room.id != room.id:
                    continue
                if slot.start_at <= now < slot.end_at:
                    current = entry
                elif slot.start_at >= now and (upcoming is None or slot.start_at < _start_in(upcoming, room)):
                    upcoming = entry
        result.append((room, current, upcoming))
    return result


def _start_in(entry: PSession, room: PRoom) -> datetime:
    return min(s.start_at for s in entry.slots if s.room.id == room.id)


def default_day(schedule: Schedule, today: date) -> date | None:
    days = schedule.days()
    if not days:
        return None
    return today if today in days else days[0]

