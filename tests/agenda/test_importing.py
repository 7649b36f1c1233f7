"""Schedule import: a real pretalx export, our own export round-tripped, re-imports, hostile files."""

from __future__ import annotations

import difflib
import json
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from conference.agenda.frab_reader import ScheduleFileError, parse_schedule
from conference.agenda.importing import apply_import, load_state, plan_import, preview_import
from conference.agenda.models import ConferenceSession, Room, SessionKind, Track
from conference.agenda.releases import latest_release, publish_release
from conference.core import after_commit
from conference.core.errors import Conflict
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile
from tests.fixtures.agenda import at

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pretalx"
FORMATS = Path(__file__).resolve().parents[3] / "shared" / "formats"


def parse(data: bytes, max_bytes: int = 5 * 1024 * 1024):
    return parse_schedule(data, default_timezone="Europe/Berlin", max_bytes=max_bytes)


def run_import(event, data: bytes, **options):
    result = apply_import(event, parse(data), actor=None, **options)
    after_commit.commit()
    return result


def sessions_of(event) -> dict[str, ConferenceSession]:
    return {s.title: s for s in db.session.scalars(select(ConferenceSession)
                                                   .where(ConferenceSession.event_id == event.id))}


def normalised(xml: bytes) -> list[str]:
    """The programme of a schedule.xml without ids, guids, slugs and URLs: one line per fact."""
    root = ET.fromstring(xml)  # noqa: S314 - our own export, parsed in a test
    lines = [f"track {t.get('name')} {t.get('color')}" for t in root.iter("track") if t.get("name")]
    for day in root.findall("day"):
        lines.append(f"day {day.get('index')} {day.get('date')}")
        for room in day.findall("room"):
            lines.append(f"  room {room.get('name')}")
            for ev in room.findall("event"):
                persons = ", ".join(p.text or "" for p in ev.iter("person"))
                lines.append("    " + " | ".join(ev.findtext(k) or "" for k in (
                    "title", "date", "start", "duration", "type", "language", "track", "abstract")) + f" | {persons}")
    return lines


# --- a real pretalx export --------------------------------------------------------------------------


def test_pretalx_export_imports_rooms_tracks_speakers_and_times(create_event) -> None:
    event = create_event("pretalx-import", end=date(2027, 3, 19))
    result = run_import(event, (FIXTURES / "schedule-v1.0.xml").read_bytes())
    assert result.plan.count("create") == 5
    rooms = db.session.scalars(select(Room.name).where(Room.event_id == event.id).order_by(Room.position)).all()
    assert rooms == ["Großer Saal", "Raum B"]
    tracks = dict(db.session.execute(select(Track.name, Track.color).where(Track.event_id == event.id)).all())
    assert tracks == {"Verwaltung & Recht": "#1f5f99", "Technik": "#c0392b"}
    people = db.session.scalars(select(SpeakerProfile.name).where(SpeakerProfile.event_id == event.id)
                                .order_by(SpeakerProfile.name)).all()
    assert people == ["Anna Äbischer", "Bernd Berg", "Clara Cramer", "Dmitri Ødegaard"]
    by_title = sessions_of(event)
    opening = by_title['Eröffnung: Verwaltung <digital> & "offen"']
    assert (opening.slots[0].room.name, opening.slots[0].start_at, opening.slots[0].end_at) == (
        "Großer Saal", at(event, "09:00"), at(event, "09:30"))
    assert opening.abstract == 'Kurzfassung **fett**.\n\nBeschreibung: Eröffnung: Verwaltung <digital> & "offen"'
    assert opening.track.name == "Verwaltung & Recht"
    assert by_title["Hands-on: Barrierefreie Formulare"].kind == SessionKind.WORKSHOP
    assert by_title["Rust for Municipal IT"].language == "en"
    assert [link.speaker.name for link in by_title["Open Source in der Kommune"].speakers] == [
        "Bernd Berg", "Clara Cramer"]
    assert by_title["Abschluss Tag 2"].slots[0].start_at == at(event, "16:00", date(2027, 3, 19))
    # Nothing is published by an import.
    assert latest_release(event) is None


def test_pretalx_reimport_updates_moves_and_reports_removed(create_event) -> None:
    event = create_event("pretalx-sync", end=date(2027, 3, 19))
    run_import(event, (FIXTURES / "schedule-v1.0.xml").read_bytes())
    ids = {title: s.id for title, s in sessions_of(event).items()}
    newer = (FIXTURES / "schedule-v1.1.xml").read_bytes()
    plan = plan_import(load_state(event), parse(newer))
    assert [(c.action, c.name) for c in plan.changes if c.kind == "session" and c.action != "update"] == [
        ("keep", "Hands-on: Barrierefreie Formulare")]
    updates = {c.name: c.details for c in plan.changes if c.action == "update"}
    assert updates == {
        "Open Source in der Kommune (aktualisiert)": (("title", "Open Source in der Kommune",
                                                       "Open Source in der Kommune (aktualisiert)"),),
        "Rust for Municipal IT": (("when", "Raum B, 2027-03-18 09:45–10:15", "Raum B, 2027-03-18 11:00–11:30"),)}
    run_import(event, newer)
    after = sessions_of(event)
    assert len(after) == 5  # updated in place, the removed one kept (not asked to remove)
    assert after["Open Source in der Kommune (aktualisiert)"].id == ids["Open Source in der Kommune"]
    assert after["Rust for Municipal IT"].slots[0].start_at == at(event, "11:00")
    # Asked to remove: never released, so deleted.
    result = run_import(event, newer, remove_missing=True)
    assert [(c.action, c.name) for c in result.plan.changes] == [("delete", "Hands-on: Barrierefreie Formulare")]
    assert "Hands-on: Barrierefreie Formulare" not in sessions_of(event)
    # The same file again: nothing to do.
    assert not plan_import(load_state(event), parse(newer), remove_missing=True).has_changes


def test_removed_session_that_was_released_is_cancelled_not_deleted(create_event, publish) -> None:
    event = create_event("pretalx-released", end=date(2027, 3, 19))
    run_import(event, (FIXTURES / "schedule-v1.0.xml").read_bytes())
    publish(event, "1.0")
    run_import(event, (FIXTURES / "schedule-v1.1.xml").read_bytes(), remove_missing=True)
    workshop = sessions_of(event)["Hands-on: Barrierefreie Formulare"]
    assert workshop.is_cancelled is True


# --- our own export, round-tripped -----------------------------------------------------------------


def test_own_export_round_trip_gives_the_same_programme(client, agenda_world, create_agenda_session, publish,
                                                        create_event, create_speaker) -> None:
    w = agenda_world
    w.speakers[0].academic_title = "Dr."
    create_agenda_session(w.event, "Keynote <b>&</b> Zukunft", room=w.rooms[0], start="09:00", end="10:00",
                          speakers=[w.speakers[0]], track=w.track, abstract="**fett** und\nzwei Zeilen",
                          kind=SessionKind.KEYNOTE)
    create_agenda_session(w.event, "Workshop", room=w.rooms[1], start="09:00", end="10:30",
                          speakers=[w.speakers[1], w.speakers[2]], language="en", kind=SessionKind.WORKSHOP)
    create_agenda_session(w.event, "Podium", room=w.rooms[0], start="10:45", end="11:30",
                          speakers=[w.speakers[2], w.speakers[1]], kind=SessionKind.PANEL)
    create_agenda_session(w.event, "Ohne Raum")  # unscheduled: not exported
    publish(w.event, "1.0")
    first = client.get("/events/agenda-test/schedule.xml").data
    copy = create_event("agenda-copy", title="Kopie")
    run_import(copy, first)
    publish(copy, "1.0")
    second = client.get("/events/agenda-copy/schedule.xml").data
    diff = list(difflib.unified_diff(normalised(first), normalised(second), "original", "round-trip", lineterm=""))
    assert normalised(first)[3] == ("    Keynote <b>&</b> Zukunft | 2027-03-18T09:00:00+01:00 | 09:00 | 01:00 | keynote | de | "
                                    "Wirtschaft | **fett** und\nzwei Zeilen | Dr. Anna Alt")
    assert len(normalised(first)) == 7
    assert diff == [], "\n".join(diff)
    # Importing the copy's export into the copy again changes nothing (guids match our own sessions).
    assert not plan_import(load_state(copy), parse(second)).has_changes
    # And the original's own export matches the original's sessions by their guid.
    assert not plan_import(load_state(w.event), parse(first)).has_changes


def test_reimport_with_changed_title_and_time_updates_instead_of_duplicating(client, agenda_world,
                                                                             create_agenda_session, publish,
                                                                             create_event) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Alt", room=w.rooms[0], start="09:00", end="10:00", speakers=[w.speakers[0]])
    publish(w.event, "1.0")
    copy = create_event("agenda-copy2")
    run_import(copy, client.get("/events/agenda-test/schedule.xml").data)
    original = sessions_of(copy)["Alt"]
    changed = client.get("/events/agenda-test/schedule.xml").data.replace(b"<title>Alt</title>",
                                                                           b"<title>Neu</title>")
    changed = changed.replace(b"<start>09:00</start>", b"<start>11:00</start>").replace(
        b"T09:00:00+01:00</date>", b"T11:00:00+01:00</date>")
    run_import(copy, changed)
    after = sessions_of(copy)
    assert list(after) == ["Neu"]
    assert after["Neu"].id == original.id
    assert after["Neu"].slots[0].start_at == at(copy, "11:00")
    assert [link.speaker.name for link in after["Neu"].speakers] == ["Anna Alt"]
    assert db.session.scalar(select(db.func.count()).select_from(SpeakerProfile)
                             .where(SpeakerProfile.event_id == copy.id)) == 1


def test_speakers_matched_by_account_email_then_by_name(create_event, create_user, create_speaker) -> None:
    event = create_event("speaker-match")
    user = create_user("erika@example.org", name="Erika")
    by_mail = create_speaker(event, "Erika M. (Profil)", user_id=user.id)
    by_name = create_speaker(event, "Paul Paulsen")
    xml = SMALL.format(persons='<person email="Erika@Example.org">Erika Mustermann</person>'
                               '<person>paul paulsen</person><person>Neu Person</person>').encode()
    run_import(event, xml)
    session = sessions_of(event)["Eins"]
    assert [link.speaker_id for link in session.speakers][:2] == [by_mail.id, by_name.id]
    assert session.speakers[2].speaker.name == "Neu Person"


def test_import_outside_event_days_is_refused_with_line(create_event) -> None:
    event = create_event("wrong-days", start=date(2030, 1, 1))
    with pytest.raises(Conflict) as error:
        apply_import(event, parse((FIXTURES / "schedule-v1.0.xml").read_bytes()), actor=None)
    assert "line 25:" in error.value.message and "outside the days" in error.value.message
    db.session.rollback()
    assert sessions_of(event) == {}


def test_conflict_with_a_local_session_refuses_everything(create_event, create_room, create_agenda_session) -> None:
    event = create_event("conflict")
    room = create_room(event, "Saal 1")
    create_agenda_session(event, "Lokal", room=room, start="09:00", end="10:00")
    data = SMALL.format(persons="").encode()
    preview = preview_import(event, parse(data))
    assert [p.code for p in preview.new_problems] == ["room_overlap"]
    assert set(sessions_of(event)) == {"Lokal"}  # the preview changed nothing
    with pytest.raises(Conflict):
        apply_import(event, parse(data), actor=None)
    db.session.rollback()
    assert set(sessions_of(event)) == {"Lokal"}


SMALL = """<?xml version="1.0" encoding="utf-8"?>
<schedule><version>1</version><conference><title>T</title><acronym>tttt</acronym>
<time_zone_name>Europe/Berlin</time_zone_name></conference>
<day index="1" date="2027-03-18"><room name="Saal 1">
<event guid="0b8c6a38-5f0a-4bde-9b69-000000000001" id="1"><title>Eins</title><date>2027-03-18T09:30:00+01:00</date>
<start>09:30</start><duration>00:45</duration><persons>{persons}</persons></event>
</room></day></schedule>"""


# --- hostile and broken files -------------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    (b'<?xml version="1.0"?>\n<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<schedule>&x;</schedule>',
     "line 2: the file declares a DTD"),
    (b'<!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
     b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><schedule>&c;&c;&c;</schedule>', "declares a DTD"),
    (b'<schedule><conference>', "line 1, column 23: not well-formed XML"),
    (b'<html><body/></html>', "the root element is <html>"),
    (b'', "The file is empty."),
    (b'<schedule>\n<conference/>\n<day index="1" date="2027-03-18">\n<room name="A">\n<event guid="g1">'
     b'<title>x</title><duration>9x</duration></event>\n</room></day></schedule>', "line 5:"),
])
def test_hostile_or_broken_files_refused_with_message(data: bytes, expected: str) -> None:
    with pytest.raises(ScheduleFileError) as error:
        parse(data)
    assert expected in "; ".join(error.value.problems)


def test_ten_megabyte_file_refused_before_parsing() -> None:
    data = b"<schedule>" + b" " * (10 * 1024 * 1024) + b"</schedule>"
    with pytest.raises(ScheduleFileError) as error:
        parse(data)
    assert error.value.problems == ["The file has 10.0 MB; at most 5 MB can be imported."]


def test_parsed_schedule_survives_json_for_the_preview_store() -> None:
    from conference.agenda.frab_reader import ParsedSchedule

    schedule = parse((FIXTURES / "schedule-v1.0.xml").read_bytes())
    assert ParsedSchedule.from_json(json.loads(json.dumps(schedule.to_json()))) == schedule


def test_demo_programme_round_trip_is_identical_and_valid(client, create_event) -> None:
    """The demo conference (13 exported sessions, several rooms and tracks, titles with umlauts): export ->
    import into an empty event with the same days -> publish -> export: the same programme, and valid."""
    import xmlschema

    from conference.demo import DEMO_SLUG, load_demo

    load_demo(attendees=1)
    first = client.get(f"/events/{DEMO_SLUG}/schedule.xml").data
    demo = db.session.scalar(select(Event).where(Event.slug == DEMO_SLUG))
    copy = create_event("demo-copy", start=demo.start_date, end=demo.end_date, timezone=demo.timezone)
    result = run_import(copy, first)
    assert result.plan.count("create") == 13
    publish_release(copy, name="1.0", actor=None)
    after_commit.commit()
    second = client.get("/events/demo-copy/schedule.xml").data
    xmlschema.XMLSchema(str(FORMATS / "schedule.xml.xsd")).validate(second.decode())
    diff = list(difflib.unified_diff(normalised(first), normalised(second), "demo", "round-trip", lineterm=""))
    assert diff == [], "\n".join(diff)
    print(f"\nround trip of the demo: {len(normalised(first))} normalised lines, diff {len(diff)} lines")


def programme_facts(xml: bytes) -> list[str]:
    """What any frab consumer shows: title, start, duration, room, track, language, persons (not the type
    names or the description, which each system words differently)."""
    root = ET.fromstring(xml)  # noqa: S314 - a fixture or our own export
    return sorted(" | ".join([ev.findtext("title") or "", ev.findtext("date") or "", ev.findtext("duration") or "",
                              ev.findtext("room") or "", ev.findtext("track") or "", ev.findtext("language") or "",
                              ", ".join(p.text or "" for p in ev.iter("person"))]) for ev in root.iter("event"))


def test_pretalx_schedule_re_exported_by_us_shows_the_same_programme(client, create_event) -> None:
    import xmlschema

    source = (FIXTURES / "schedule-v1.0.xml").read_bytes()
    event = create_event("from-pretalx", end=date(2027, 3, 19))
    run_import(event, source)
    publish_release(event, name="v1.0", actor=None)
    after_commit.commit()
    ours = client.get("/events/from-pretalx/schedule.xml").data
    xmlschema.XMLSchema(str(FORMATS / "schedule.xml.xsd")).validate(ours.decode())
    diff = list(difflib.unified_diff(programme_facts(source), programme_facts(ours), "pretalx", "ours",
                                     lineterm=""))
    assert len(programme_facts(source)) == 5
    assert diff == [], "\n".join(diff)


def test_reimport_keeps_roles_and_the_slot_when_only_the_title_changes(create_event) -> None:
    event = create_event("keep-roles", end=date(2027, 3, 19))
    run_import(event, (FIXTURES / "schedule-v1.0.xml").read_bytes())
    session = sessions_of(event)["Open Source in der Kommune"]
    session.speakers[1].role = "moderator"
    slot_id = session.slots[0].id
    after_commit.commit()
    newer = (FIXTURES / "schedule-v1.0.xml").read_bytes().replace(
        b"<title>Open Source in der Kommune</title>", b"<title>Open Source, neu</title>")
    run_import(event, newer)
    session = sessions_of(event)["Open Source, neu"]
    assert [(link.speaker.name, link.role) for link in session.speakers] == [
        ("Bernd Berg", "speaker"), ("Clara Cramer", "moderator")]
    assert [slot.id for slot in session.slots] == [slot_id]
