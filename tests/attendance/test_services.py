"""Presence minutes and the figures made from them: the sampler, several tabs, several workers, one session's
figures computed independently from the raw records, the day in 5-minute buckets, a person's own record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conference.attendance import services
from conference.attendance.collector import PresenceCollector, collector, minute_of
from conference.attendance.models import PresenceMinute, ReactionMinute
from conference.attendance.services import NAMES_SHOWN
from conference.core.db import utcnow
from conference.core.permissions import Role
from conference.extensions import db
from conference.live import retention
from conference.live.broadcast import live_state
from conference.live.state import ConnectionRegistry, SocketIdentity
from tests.attendance.helpers import T0, present, world


class Clock:
    def __init__(self, minute: int) -> None:
        self.now = minute * 60.0 + 5

    def __call__(self) -> float:
        return self.now


def rows(event: Any) -> list[tuple[int, str, int]]:
    return [tuple(r) for r in db.session.execute(select(PresenceMinute.user_id, PresenceMinute.room,
                                                        PresenceMinute.minute).where(PresenceMinute.event_id == event.id)
                                                 .order_by(PresenceMinute.minute, PresenceMinute.user_id))]


def test_sampler_writes_minutes_of_joined_sockets_and_several_tabs_count_once(
        app: Any, create_event: Any, create_session: Any, person: Any, socket_for: Any) -> None:
    w = world(create_event, create_session, person)
    event, (first, _second), (joerg, aenne, _zoe) = w["event"], w["sessions"], w["people"]
    tabs = [socket_for(joerg), socket_for(joerg), socket_for(joerg)]
    for tab in tabs:
        assert tab.emit("join", {"room": f"session:{first.id}"}, callback=True)["ok"] is True
    other = socket_for(aenne)
    assert other.emit("join", {"room": f"lobby:{event.slug}"}, callback=True)["ok"] is True
    clock = Clock(T0)
    sampler = PresenceCollector(app, registry=live_state(app).registry, clock=clock)
    assert sampler.sample() == 2  # Jörg once (three tabs), Änne in the lobby; the event:<slug> room not counted
    clock.now += 20
    assert sampler.sample() == 0  # the same minute again: nothing new, no statement
    clock.now += 60
    tabs[0].emit("leave", {"room": f"session:{first.id}"}, callback=True)  # two tabs still there
    other.disconnect()
    assert sampler.sample() == 1
    assert rows(event) == [(joerg.id, f"session:{first.id}", T0), (aenne.id, f"lobby:{event.slug}", T0),
                           (joerg.id, f"session:{first.id}", T0 + 1)]


def test_a_full_minute_is_written_in_commits_of_500_with_the_loop_free_between(
        app: Any, create_event: Any, create_session: Any, person: Any) -> None:
    w = world(create_event, create_session, person)
    event, joerg = w["event"], w["people"][0]
    registry = ConnectionRegistry()
    registry.add("sid", SocketIdentity(user_id=joerg.id))
    for number in range(1200):  # one pair per room: 1,200 pairs in the minute
        registry.enter("sid", f"session:{number}", event.id)
    stored_at_each_turn: list[int] = []

    def between() -> None:
        stored_at_each_turn.append(db.session.scalar(select(func.count()).select_from(PresenceMinute)) or 0)

    assert PresenceCollector(app, registry=registry, clock=Clock(T0)).sample(between) == 1200
    assert stored_at_each_turn == [500, 1000, 1200]  # committed before each turn, not at the end
    assert len(rows(event)) == 1200


def test_two_workers_writing_the_same_minute_count_once(app: Any, create_event: Any, create_session: Any,
                                                        person: Any) -> None:
    w = world(create_event, create_session, person)
    event, (first, _), (joerg, aenne, _zoe) = w["event"], w["sessions"], w["people"]
    room = f"session:{first.id}"
    workers = []
    for number in range(2):  # each worker process has its own registry; Jörg has a tab on each
        registry = ConnectionRegistry()
        registry.add(f"sid-j{number}", SocketIdentity(user_id=joerg.id))
        registry.enter(f"sid-j{number}", room, event.id)
        workers.append(PresenceCollector(app, registry=registry, clock=Clock(T0)))
    workers[1].registry.add("sid-a", SocketIdentity(user_id=aenne.id))
    workers[1].registry.enter("sid-a", room, event.id)
    for worker in workers:
        worker.count_reactions(room, event.id, 3)
    assert [worker.sample() for worker in workers] == [1, 2]
    assert rows(event) == [(joerg.id, room, T0), (aenne.id, room, T0)]
    assert db.session.scalar(select(ReactionMinute.count).where(ReactionMinute.room == room)) == 6  # counts add up
    figures = {f.session_id: f for f in services.session_figures(event)}[first.id]
    assert (figures.unique_attendees, figures.peak_concurrent, figures.reactions) == (2, 2, 6)


def test_one_session_figures_equal_an_independent_count_of_the_raw_records(
        app: Any, create_event: Any, create_session: Any, person: Any) -> None:
    w = world(create_event, create_session, person)
    event, (first, second), (joerg, aenne, zoe) = w["event"], w["sessions"], w["people"]
    room = f"session:{first.id}"
    present(event, joerg, room, range(T0, T0 + 45))  # the whole session
    present(event, aenne, room, range(T0 + 10, T0 + 20))  # came late, left early
    present(event, aenne, room, range(T0 + 30, T0 + 35))  # and came back
    present(event, zoe, room, [T0 + 12])  # looked in
    present(event, zoe, f"session:{second.id}", range(T0 + 50, T0 + 60))
    present(event, zoe, f"lobby:{event.slug}", range(T0, T0 + 12))
    raw = [r for r in rows(event) if r[1] == room]
    per_minute: dict[int, set[int]] = {}
    for user_id, _room, minute in raw:
        per_minute.setdefault(minute, set()).add(user_id)
    people = {user_id for user_id, _room, _minute in raw}
    expected = (len(people), max(len(v) for v in per_minute.values()), round(len(raw) / len(people), 1))
    figures = {f.session_id: f for f in services.session_figures(event)}[first.id]
    assert expected == (3, 3, 20.3)  # 45 + 15 + 1 person-minutes over 3 people; all three in minute 12
    assert (figures.unique_attendees, figures.peak_concurrent, figures.average_minutes) == expected
    assert figures.person_minutes == 61
    other = {f.session_id: f for f in services.session_figures(event)}[second.id]
    assert (other.unique_attendees, other.peak_concurrent, other.person_minutes) == (1, 1, 10)
    totals = services.event_figures(event)
    assert (totals.registered, totals.attended, totals.lobby_attendees) == (3, 3, 1)
    assert totals.by_sector is None  # registrations do not ask for a sector (yet)


def test_timeline_counts_distinct_people_per_five_minutes(app: Any, create_event: Any, create_session: Any,
                                                          person: Any) -> None:
    w = world(create_event, create_session, person)
    event, (first, second), (joerg, aenne, _zoe) = w["event"], w["sessions"], w["people"]
    start = T0 - T0 % 5
    present(event, joerg, f"session:{first.id}", range(start, start + 5))
    present(event, joerg, f"session:{second.id}", range(start + 2, start + 4))  # two rooms at once: once
    present(event, aenne, f"session:{first.id}", [start + 4, start + 15])
    timeline = services.timeline(event)
    assert [people for _at, people in timeline] == [2, 0, 0, 1]
    assert timeline[1][0] - timeline[0][0] == timedelta(minutes=5)
    assert int(timeline[0][0].timestamp()) == start * 60


def test_personal_record_counts_a_minute_in_two_rooms_once(app: Any, create_event: Any, create_session: Any,
                                                           person: Any) -> None:
    w = world(create_event, create_session, person)
    event, (first, second), (joerg, _aenne, _zoe) = w["event"], w["sessions"], w["people"]
    present(event, joerg, f"lobby:{event.slug}", range(T0, T0 + 10))
    present(event, joerg, f"session:{first.id}", range(T0 + 5, T0 + 25))
    present(event, joerg, f"session:{second.id}", range(T0 + 40, T0 + 42))
    record = services.personal_record(event, joerg.id)
    assert record.total_minutes == 27
    assert record.sessions == [(first.id, "Eröffnung und Grüße", 20), (second.id, "Podium: Städte & Gemeinden", 2)]
    assert record.qualifies is False  # below the default 30 minutes
    event.certificate_min_minutes = 25
    assert services.personal_record(event, joerg.id).qualifies is True


def test_retention_deletes_presence_minutes_after_their_period(app: Any, create_event: Any, create_session: Any,
                                                               person: Any) -> None:
    w = world(create_event, create_session, person)
    event, (first, _second), (joerg, *_others) = w["event"], w["sessions"], w["people"]
    present(event, joerg, f"session:{first.id}", range(T0, T0 + 3))
    event.attendance_retention_days = 30
    db.session.commit()
    report = retention.run_pass(app, now=event.ends_at + timedelta(days=29))
    assert report.deleted["attendance"] == 0 and len(rows(event)) == 3
    report = retention.run_pass(app, now=event.ends_at + timedelta(days=30))
    assert report.deleted["attendance"] == 3
    assert rows(event) == []


@pytest.mark.parametrize("minutes", [-1, 1441])
def test_threshold_out_of_range_is_refused(app: Any, create_event: Any, minutes: int) -> None:
    from conference.core.errors import ValidationFailed

    event = create_event("schwelle")
    with pytest.raises(ValidationFailed):
        services.set_certificate_threshold(event, minutes=minutes, actor=None)  # type: ignore[arg-type]


def test_minute_of_is_whole_minutes_since_the_epoch() -> None:
    now = utcnow()
    assert minute_of(now.timestamp()) == int(now.timestamp()) // 60


def test_reactions_sent_over_the_socket_are_counted_per_minute(app: Any, create_event: Any, create_session: Any,
                                                               person: Any, socket_for: Any) -> None:
    import time

    w = world(create_event, create_session, person)
    event, (first, _second), (joerg, *_others) = w["event"], w["sessions"], w["people"]
    sampler = collector(app)  # as the server starts it: the live layer now reports reaction totals
    client = socket_for(joerg)
    room = f"session:{first.id}"
    assert client.emit("join", {"room": room}, callback=True)["ok"] is True
    for reaction in ("applause", "applause", "heart"):
        answer = client.emit("react", {"room": room, "reaction": reaction}, callback=True)
        assert answer["ok"] is True, answer
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(sampler.reactions.values()) < 3:
        time.sleep(0.05)  # the live layer flushes reactions once per LIVE_AGGREGATE_INTERVAL
    sampler.sample()
    assert {f.session_id: f for f in services.session_figures(event)}[first.id].reactions == 3
    assert event.id == db.session.scalar(select(ReactionMinute.event_id))


def test_who_is_where_names_the_first_fifty_and_counts_the_rest(app: Any, create_event: Any, create_session: Any,
                                                               person: Any) -> None:
    event = create_event("viele")
    people = [person(event, Role.ATTENDEE, name=f"Person {number:03d}") for number in range(NAMES_SHOWN + 7)]
    registry = ConnectionRegistry()
    for user in people:
        registry.add(f"sid-{user.id}", SocketIdentity(user_id=user.id))
        registry.enter(f"sid-{user.id}", f"lobby:{event.slug}", event.id)
    lobby = services.live_rooms(event, registry)[0]
    assert lobby["online"] == NAMES_SHOWN + 7 and lobby["more"] == 7
    assert lobby["people"] == [f"Person {number:03d}" for number in range(NAMES_SHOWN)]
