"""The per-process presence sampler: who is in which room, written once per minute, never on a join.

Every ATTENDANCE_SAMPLE_SECONDS (default 10) the sampler reads this process's connection registry (no query,
no lock held longer than a copy) and adds the (person, room) pairs it sees to the current minute. Pairs not
yet written for that minute are inserted then: the first sample of a minute writes everyone present (in
commits of 500, the loop free between them), later samples only newcomers.
The primary key (person, room, minute) and INSERT .. ON CONFLICT DO NOTHING make a person count once however
many tabs they have, and let every worker of a scale-out write its own view of the same minute.

Reaction counts (from the live layer's per-second aggregation) and slide downloads are counted in memory
and added to their counters with the same pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy.dialects import postgresql, sqlite

from conference.attendance.models import PresenceMinute, ReactionMinute, SlideDownloadDay
from conference.extensions import db
from conference.settings import get_settings

log = logging.getLogger("conference.attendance")

Pair = tuple[int, str, int]  # user id, room, event id
PRESENCE_ROWS_PER_COMMIT = 500


def minute_of(moment: float) -> int:
    """Whole minutes since the epoch (UTC) of a unix time."""
    return int(moment // 60)


def counted_room(room: str) -> bool:
    """Session rooms and lobbies count; the per-event broadcast room every socket joins does not."""
    return room.startswith(("session:", "lobby:"))


def present_pairs(registry: Any) -> set[Pair]:
    """(user, room, event) of every socket of this process in a counted room (several tabs: one pair)."""
    pairs: set[Pair] = set()
    for sid in registry.matching(lambda identity: bool(identity.rooms)):
        identity = registry.get(sid)
        if identity is None:
            continue
        for room, event_id in list(identity.event_ids.items()):
            if counted_room(room):
                pairs.add((identity.user_id, room, event_id))
    return pairs


def _insert(model: Any) -> Any:
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model))


def record_presence(minute: int, pairs: Iterable[Pair]) -> None:
    """Store that each (user, room, event) was present during `minute`; already stored pairs stay as they are.
    Flushes nothing else; the caller commits."""
    rows = [{"user_id": user, "room": room, "minute": minute, "event_id": event} for user, room, event in pairs]
    if rows:
        # One statement for all rows (executemany), the same shape each time, so SQLAlchemy compiles it once:
        # a multi-row VALUES of 2,000 rows was compiled anew each minute and held the event loop for 300 ms
        # (bench/soak.py named it).
        db.session.execute(_insert(PresenceMinute).on_conflict_do_nothing(), rows)


def add_reactions(minute: int, counts: dict[tuple[str, int], int]) -> None:
    """Add reaction counts per (room, event) to `minute` (every worker adds its own)."""
    for (room, event_id), count in counts.items():
        statement = _insert(ReactionMinute).values(room=room, minute=minute, event_id=event_id, count=count)
        db.session.execute(statement.on_conflict_do_update(
            index_elements=["room", "minute"], set_={"count": ReactionMinute.count + statement.excluded.count}))


def add_downloads(day: str, counts: dict[tuple[int, int, int], int]) -> None:
    """Add download counts per (presentation, session, event) to `day`."""
    for (presentation_id, session_id, event_id), count in counts.items():
        statement = _insert(SlideDownloadDay).values(presentation_id=presentation_id, day=day, event_id=event_id,
                                                     session_id=session_id, count=count)
        db.session.execute(statement.on_conflict_do_update(
            index_elements=["presentation_id", "day"],
            set_={"count": SlideDownloadDay.count + statement.excluded.count}))


class PresenceCollector:
    """Samples one process's registry and writes presence minutes and counters (see the module docstring)."""

    def __init__(self, app: Flask, *, registry: Any, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.registry = registry
        self.clock = clock
        self._lock = threading.Lock()
        self._minute: int | None = None
        self._written: set[Pair] = set()
        self.reactions: Counter[tuple[str, int]] = Counter()
        self.downloads: Counter[tuple[int, int, int]] = Counter()

    def count_reactions(self, room: str, event_id: int, count: int) -> None:
        with self._lock:
            self.reactions[(room, event_id)] += count

    def count_download(self, presentation_id: int, session_id: int, event_id: int) -> None:
        with self._lock:
            self.downloads[(presentation_id, session_id, event_id)] += 1

    def sample(self, between: Callable[[], Any] = lambda: None) -> int:
        """Read the registry and write what is new for the current minute; returns the rows offered.

        The first sample of a minute writes everyone present, in transactions of PRESENCE_ROWS_PER_COMMIT rows
        in key order, calling `between()` after each (the loop's turn for everyone else): one statement for
        2,000 people grew with the table (16 ms at 60,000 rows, 39 ms at 420,000, an 8-hour day at 2,000
        people is 960,000), and it held the event loop all along. A failure halfway leaves the written part;
        the next sample offers everything again and ON CONFLICT DO NOTHING keeps each pair once."""
        now = self.clock()
        minute = minute_of(now)
        pairs = present_pairs(self.registry)
        with self._lock:
            if minute != self._minute:
                self._minute, self._written = minute, set()
            new = pairs - self._written
            reactions, self.reactions = self.reactions, Counter()
            downloads, self.downloads = self.downloads, Counter()
        if not new and not reactions and not downloads:
            return 0
        with self.app.app_context():
            try:
                ordered = sorted(new)
                for start in range(0, len(ordered), PRESENCE_ROWS_PER_COMMIT):
                    record_presence(minute, ordered[start:start + PRESENCE_ROWS_PER_COMMIT])
                    db.session.commit()
                    between()
                add_reactions(minute, dict(reactions))
                add_downloads(datetime.fromtimestamp(now, UTC).date().isoformat(), dict(downloads))
                db.session.commit()
            except Exception:
                db.session.rollback()
                with self._lock:  # counters go back for the next pass; presence is seen again anyway
                    self.reactions.update(reactions)
                    self.downloads.update(downloads)
                raise
            finally:
                db.session.remove()
        with self._lock:
            if minute == self._minute:
                self._written |= new
        return len(new)


def collector(app: Flask) -> PresenceCollector:
    """This process's collector for `app` (made on first use)."""
    found = app.extensions.get("conference_attendance")
    if found is None:
        from conference.live.broadcast import live_state

        state = live_state(app)
        found = app.extensions.setdefault("conference_attendance",
                                          PresenceCollector(app, registry=state.registry))
        state.on_reactions = lambda room, total: _reactions_seen(app, room, total)
    return found  # type: ignore[no-any-return]


def _reactions_seen(app: Flask, room: str, total: int) -> None:
    from conference.live.broadcast import live_state

    event_id = live_state(app).room_events.get(room)
    if event_id is not None and counted_room(room):
        collector(app).count_reactions(room, event_id, total)


def start_collector(app: Flask, start_background_task: Callable[..., Any], sleep: Callable[[float], Any]) -> None:
    """Sample every ATTENDANCE_SAMPLE_SECONDS in this process (0: presence is not recorded)."""
    interval = get_settings(app).attendance_sample_seconds
    if interval <= 0:
        return
    sampler = collector(app)

    def loop() -> None:
        while True:
            sleep(interval)
            try:
                sampler.sample(between=lambda: sleep(0))
            except Exception:  # the database away: the next sample writes the minute again
                log.exception("recording attendance failed")

    start_background_task(loop)
