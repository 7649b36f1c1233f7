"""Agenda rules: hard conflicts refuse, soft ones warn; slots, breaks, releases and their change log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conference.agenda import conflicts, releases, rooms, services
from conference.agenda.models import AgendaRelease, ConferenceSession, SessionKind, TimetableSlot
from conference.core import after_commit
from conference.core.errors import Conflict, ValidationFailed
from conference.core.signals import agenda_released
from conference.extensions import db
from tests.fixtures.agenda import at


def test_schedule_session_room_overlap_refused(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Erster", room=w.rooms[0], start="09:00", end="10:00")
    second = create_agenda_session(w.event, "Zweiter")
    with pytest.raises(Conflict) as error:
        services.schedule_session(second, room=w.rooms[0], start_at=at(w.event, "09:30"),
                                  end_at=at(w.event, "10:30"), actor=None)
    assert error.value.code == "room_overlap"
    assert error.value.field == "room_id"
    assert "»Erster«" in error.value.message


def test_schedule_session_adjacent_in_same_room_allowed(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Erster", room=w.rooms[0], start="09:00", end="10:00")
    second = create_agenda_session(w.event, "Zweiter")
    slot, warnings = services.schedule_session(second, room=w.rooms[0], start_at=at(w.event, "10:00"),
                                               end_at=at(w.event, "10:30"), actor=None)
    assert slot.room_id == w.rooms[0].id
    assert warnings == []


def test_schedule_session_speaker_in_two_places_refused(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Keynote", room=w.rooms[0], start="09:00", end="10:00", speakers=[w.speakers[0]])
    second = create_agenda_session(w.event, "Workshop", speakers=[w.speakers[0], w.speakers[1]])
    with pytest.raises(Conflict) as error:
        services.schedule_session(second, room=w.rooms[1], start_at=at(w.event, "09:45"),
                                  end_at=at(w.event, "11:00"), actor=None)
    assert error.value.code == "speaker_overlap"
    assert error.value.field == "speakers"
    assert "Anna Alt" in error.value.message


def test_schedule_session_speaker_back_to_back_in_other_room_warns(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Keynote", room=w.rooms[0], start="09:00", end="10:00", speakers=[w.speakers[0]])
    second = create_agenda_session(w.event, "Workshop", speakers=[w.speakers[0]])
    slot, warnings = services.schedule_session(second, room=w.rooms[1], start_at=at(w.event, "10:00"),
                                               end_at=at(w.event, "11:00"), actor=None)
    assert slot.id is not None
    assert [w_.code for w_ in warnings] == ["speaker_back_to_back"]
    assert warnings[0].severity == "warning"


def test_schedule_session_back_to_back_in_same_room_no_warning(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Keynote", room=w.rooms[0], start="09:00", end="10:00", speakers=[w.speakers[0]])
    second = create_agenda_session(w.event, "Folgevortrag", speakers=[w.speakers[0]])
    _slot, warnings = services.schedule_session(second, room=w.rooms[0], start_at=at(w.event, "10:00"),
                                                end_at=at(w.event, "11:00"), actor=None)
    assert warnings == []


@pytest.mark.parametrize(("start", "end", "code", "field"), [
    ("10:00", "09:00", "end_before_start", "end"),
    ("10:00", "10:00", "zero_length", "end"),
])
def test_schedule_session_bad_times_refused(agenda_world, create_agenda_session, start, end, code, field) -> None:
    w = agenda_world
    session = create_agenda_session(w.event, "Vortrag")
    with pytest.raises(ValidationFailed) as error:
        services.schedule_session(session, room=w.rooms[0], start_at=at(w.event, start), end_at=at(w.event, end),
                                  actor=None)
    assert (error.value.code, error.value.field) == (code, field)


@pytest.mark.parametrize(("start_offset_days", "field"), [(-1, "start"), (1, "start")])
def test_schedule_session_outside_event_days_refused(agenda_world, create_agenda_session, start_offset_days,
                                                     field) -> None:
    w = agenda_world
    session = create_agenda_session(w.event, "Vortrag")
    day = w.event.start_date + timedelta(days=start_offset_days)
    with pytest.raises(ValidationFailed) as error:
        services.schedule_session(session, room=w.rooms[0], start_at=at(w.event, "10:00", day),
                                  end_at=at(w.event, "11:00", day), actor=None)
    assert (error.value.code, error.value.field) == ("outside_event", field)


def test_schedule_session_past_midnight_of_last_day_refused(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    session = create_agenda_session(w.event, "Nachtschicht")
    with pytest.raises(ValidationFailed) as error:
        services.schedule_session(session, room=w.rooms[0], start_at=at(w.event, "23:30"),
                                  end_at=at(w.event, "23:30") + timedelta(hours=1), actor=None)
    assert (error.value.code, error.value.field) == ("outside_event", "end")


def test_schedule_session_room_of_other_event_refused(agenda_world, create_event, create_room,
                                                      create_agenda_session) -> None:
    w = agenda_world
    other_room = create_room(create_event("other-event"), "Fremd")
    session = create_agenda_session(w.event, "Vortrag")
    with pytest.raises(ValidationFailed) as error:
        services.schedule_session(session, room=other_room, start_at=at(w.event, "09:00"),
                                  end_at=at(w.event, "10:00"), actor=None)
    assert error.value.field == "room_id"


def test_second_slot_for_a_talk_refused(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    with pytest.raises(Conflict) as error:
        services.schedule_session(talk, room=w.rooms[1], start_at=at(w.event, "11:00"),
                                  end_at=at(w.event, "12:00"), actor=None)
    assert error.value.code == "already_scheduled"


def test_move_slot_checks_conflicts_but_not_itself(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0], start="09:00", end="10:00")
    create_agenda_session(w.event, "Anderer", room=w.rooms[1], start="09:00", end="10:00")
    slot = talk.slots[0]
    services.move_slot(slot, room=w.rooms[0], start_at=at(w.event, "09:30"), end_at=at(w.event, "10:30"),
                       actor=None)
    after_commit.commit()
    with pytest.raises(Conflict):
        services.move_slot(slot, room=w.rooms[1], start_at=at(w.event, "09:30"), end_at=at(w.event, "10:30"),
                           actor=None)
    db.session.rollback()
    stored = db.session.get(TimetableSlot, slot.id)
    assert (stored.room_id, stored.start_at) == (w.rooms[0].id, at(w.event, "09:30"))


def test_cancelled_session_frees_room_and_restore_is_checked(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    first = create_agenda_session(w.event, "Abgesagt", room=w.rooms[0], start="09:00", end="10:00")
    services.cancel_session(first, actor=None)
    after_commit.commit()
    create_agenda_session(w.event, "Ersatz", room=w.rooms[0], start="09:00", end="10:00")
    with pytest.raises(Conflict) as error:
        services.restore_session(first, actor=None)
    assert error.value.code == "room_overlap"


def test_update_session_speaker_busy_elsewhere_refused(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Keynote", room=w.rooms[0], speakers=[w.speakers[0]])
    other = create_agenda_session(w.event, "Parallel", room=w.rooms[1])
    with pytest.raises(Conflict) as error:
        services.update_session(other, actor=None, speakers=[(w.speakers[0], "speaker")])
    assert error.value.code == "speaker_overlap"
    db.session.rollback()
    assert db.session.get(ConferenceSession, other.id).speakers == []


def test_copy_break_to_all_rooms_creates_missing_slots(agenda_world, create_agenda_session, create_room) -> None:
    w = agenda_world
    create_room(w.event, "Raum B", position=2)
    pause = create_agenda_session(w.event, "Pause", room=w.rooms[0], start="10:00", end="10:15", kind=SessionKind.BREAK)
    created = services.copy_break_to_all_rooms(pause, actor=None)
    after_commit.commit()
    assert len(created) == 2
    assert sorted(s.room.name for s in pause.slots) == ["Hauptbühne", "Raum A", "Raum B"]
    assert {(s.start_at, s.end_at) for s in pause.slots} == {(at(w.event, "10:00"), at(w.event, "10:15"))}


def test_copy_break_blocked_room_changes_nothing(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Workshop", room=w.rooms[1], start="09:30", end="10:30")
    pause = create_agenda_session(w.event, "Pause", room=w.rooms[0], start="10:00", end="10:15", kind=SessionKind.BREAK)
    with pytest.raises(Conflict):
        services.copy_break_to_all_rooms(pause, actor=None)
    db.session.rollback()
    assert db.session.query(TimetableSlot).filter_by(session_id=pause.id).count() == 1


def test_copy_break_refused_for_a_talk(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    with pytest.raises(Conflict) as error:
        services.copy_break_to_all_rooms(talk, actor=None)
    assert error.value.code == "not_a_break"


def test_create_session_rejects_long_title_and_unknown_kind(agenda_world) -> None:
    w = agenda_world
    with pytest.raises(ValidationFailed) as long_title:
        services.create_session(w.event, title="x" * 201, actor=None)
    with pytest.raises(ValidationFailed) as bad_kind:
        services.create_session(w.event, title="ok", kind="party", actor=None)
    assert (long_title.value.field, bad_kind.value.field) == ("title", "kind")


def test_delete_room_in_use_refused(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    with pytest.raises(Conflict) as error:
        rooms.delete_room(w.rooms[0], actor=None)
    assert error.value.code == "room_in_use"


@pytest.mark.parametrize(("kind", "url", "field"), [
    ("youtube", "http://insecure.example/embed", "stream_url"),
    ("youtube", "javascript:alert(1)", "stream_url"),
    ("flash", "https://example.org/x", "stream_kind"),
    ("youtube", "", "stream_url"),
])
def test_create_room_bad_stream_refused(agenda_world, kind, url, field) -> None:
    with pytest.raises(ValidationFailed) as error:
        rooms.create_room(agenda_world.event, name="X", stream_kind=kind, stream_url=url, actor=None)
    assert error.value.field == field


def test_agenda_problems_reports_warnings(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Keynote", room=w.rooms[0], start="09:00", end="10:00", speakers=[w.speakers[0]])
    create_agenda_session(w.event, "Workshop", room=w.rooms[1], start="10:00", end="11:00", speakers=[w.speakers[0]])
    problems = conflicts.agenda_problems(w.event)
    assert [(p.code, p.severity) for p in problems] == [("speaker_back_to_back", "warning")]


# --- releases -----------------------------------------------------------------------------------


def test_publish_release_change_log_against_previous(agenda_world, create_agenda_session, publish) -> None:
    w = agenda_world
    kept = create_agenda_session(w.event, "Bleibt", room=w.rooms[0], start="09:00", end="10:00")
    moved = create_agenda_session(w.event, "Wandert", room=w.rooms[0], start="10:00", end="11:00")
    cancelled = create_agenda_session(w.event, "Fällt aus", room=w.rooms[1], start="09:00", end="10:00")
    first = publish(w.event, "1.0")
    assert [item["title"] for item in json.loads(first.changes)["added"]] == ["Bleibt", "Fällt aus", "Wandert"]

    services.move_slot(moved.slots[0], room=w.rooms[1], start_at=at(w.event, "11:00"),
                       end_at=at(w.event, "12:00"), actor=None)
    services.cancel_session(cancelled, actor=None)
    added = services.create_session(w.event, title="Neu", actor=None)
    services.schedule_session(added, room=w.rooms[0], start_at=at(w.event, "14:00"), end_at=at(w.event, "15:00"),
                              actor=None)
    after_commit.commit()
    second = publish(w.event, "1.1")
    changes = json.loads(second.changes)
    assert changes["added"] == [{"id": added.id, "title": "Neu"}]
    assert changes["moved"] == [{"id": moved.id, "title": "Wandert"}]
    assert changes["cancelled"] == [{"id": cancelled.id, "title": "Fällt aus"}]
    assert kept.id not in {item["id"] for items in changes.values() for item in items}
    assert (second.sequence, second.name) == (2, "1.1")


def test_publish_release_without_changes_refused(agenda_world, create_agenda_session, publish) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    publish(w.event, "1.0")
    with pytest.raises(Conflict) as error:
        releases.publish_release(w.event, name="1.1", actor=None)
    assert error.value.code == "no_changes"


def test_publish_release_duplicate_name_refused(agenda_world, create_agenda_session, publish) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    publish(w.event, "1.0")
    create_agenda_session(w.event, "Noch einer", room=w.rooms[1])
    with pytest.raises(Conflict) as error:
        releases.publish_release(w.event, name="1.0", actor=None)
    assert error.value.code == "duplicate_name"


def test_publish_release_with_hard_conflict_refused(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    talk = create_agenda_session(w.event, "Vortrag", room=w.rooms[0], start="09:00", end="10:00")
    # The event is shortened afterwards: the slot now lies outside its days.
    w.event.start_date = w.event.start_date + timedelta(days=1)
    w.event.end_date = w.event.start_date
    after_commit.commit()
    with pytest.raises(Conflict) as error:
        releases.publish_release(w.event, name="1.0", actor=None)
    assert error.value.code == "agenda_has_conflicts"
    assert talk.title in error.value.message


def test_publish_release_signal_only_after_commit(app, agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    received: list[dict] = []

    def receiver(sender, **kwargs) -> None:
        received.append(kwargs)

    agenda_released.connect(receiver)
    try:
        releases.publish_release(w.event, name="rolled-back", actor=None)
        db.session.rollback()
        from conference.core.after_commit import discard_deferred

        discard_deferred()
        assert received == []
        releases.publish_release(w.event, name="1.0", actor=None)
        after_commit.commit()
    finally:
        agenda_released.disconnect(receiver)
    assert [(r["event_id"], r["version"]) for r in received] == [(w.event.id, "1.0")]
    assert db.session.query(AgendaRelease).count() == 1


def test_ensure_demo_release_publishes_once(agenda_world, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Vortrag", room=w.rooms[0])
    first = releases.ensure_demo_release(w.event)
    after_commit.commit()
    assert first is not None and first.name == "1.0"
    assert releases.ensure_demo_release(w.event) is None


def test_demo_loader_publishes_first_release(app) -> None:
    from conference.demo import DEMO_SLUG, load_demo
    from conference.events.models import Event

    load_demo(attendees=2)
    event = db.session.query(Event).filter_by(slug=DEMO_SLUG).one()
    release = releases.latest_release(event)
    assert release is not None and release.name == "1.0"
    snapshot = json.loads(release.snapshot)
    assert len(snapshot["sessions"]) == 16
    assert conflicts.agenda_problems(event) == [] or all(p.severity == "warning"
                                                         for p in conflicts.agenda_problems(event))
