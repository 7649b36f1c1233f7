"""Exports: schedule.xml and schedule.json validate against the C3VOC schemas, iCal parses with icalendar."""

from __future__ import annotations

import json
from pathlib import Path

import icalendar
import jsonschema
import pytest
import xmlschema

from conference.agenda import services
from conference.agenda.exports import acronym_for
from conference.agenda.models import SessionKind
from conference.core import after_commit
from conference.core.signals import session_attachments
from tests.fixtures.agenda import at

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FORMATS = PROJECT_ROOT.parent / "shared" / "formats"


@pytest.fixture(scope="module")
def xml_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(FORMATS / "schedule.xml.xsd"))


@pytest.fixture(scope="module")
def json_schema() -> dict:
    return json.loads((FORMATS / "json" / "schema.json").read_text())


@pytest.fixture
def programme(agenda_world, create_agenda_session, publish):
    w = agenda_world
    keynote = create_agenda_session(w.event, "Keynote <b>&</b> Zukunft", room=w.rooms[0], start="09:00",
                                    end="10:00", speakers=[w.speakers[0]], track=w.track, abstract="**fett**")
    workshop = create_agenda_session(w.event, "Workshop", room=w.rooms[1], start="09:00", end="10:30",
                                     speakers=[w.speakers[1], w.speakers[2]], language="en")
    pause = create_agenda_session(w.event, "Pause", room=w.rooms[0], start="10:30", end="10:45",
                                  kind=SessionKind.BREAK)
    services.copy_break_to_all_rooms(pause, actor=None)
    after_commit.commit()
    publish(w.event, "2027-03-01 v1")
    return w, keynote, workshop, pause


def test_acronym_matches_both_schemas(create_event) -> None:
    import re

    for slug in ("digitalkonferenz-2027", "abcd", "event-1"):
        event = create_event(slug)
        acronym = acronym_for(event)
        assert re.match(r"^[a-z0-9_-][a-z0-9_]{3,}(-2[0-9]{3}-[a-z]+)?$", acronym)
        assert re.fullmatch(r"[a-z0-9_-]{4,}", acronym)


def test_schedule_xml_valid_with_version_and_guids(client, programme, xml_schema) -> None:
    w, keynote, workshop, _pause = programme
    response = client.get("/events/agenda-test/schedule.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    xml_schema.validate(response.get_data(as_text=True))
    data = xml_schema.to_dict(response.get_data(as_text=True))
    assert data["version"] == "2027-03-01 v1"
    assert response.headers["X-Schedule-Version"] == "2027-03-01 v1"
    events = [e for day in data["day"] for room in day["room"] for e in room.get("event", [])]
    assert {(e["@guid"], e["title"]) for e in events} == {(keynote.guid, "Keynote <b>&</b> Zukunft"),
                                                          (workshop.guid, "Workshop")}
    first = next(e for e in events if e["@guid"] == keynote.guid)
    assert (first["date"], first["start"], first["duration"], first["room"]) == (
        "2027-03-18T09:00:00+01:00", "09:00", "01:00", "Hauptbühne")
    assert first["persons"]["person"][0]["$"] == "Anna Alt"


def test_schedule_json_valid_with_version(client, programme, json_schema) -> None:
    w, keynote, workshop, _pause = programme
    body = client.get("/events/agenda-test/schedule.json").get_json()
    jsonschema.validate(body, json_schema, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER)
    schedule = body["schedule"]
    assert schedule["version"] == "2027-03-01 v1"
    assert schedule["conference"]["acronym"] == "agenda_test"
    rooms = schedule["conference"]["days"][0]["rooms"]
    assert [e["guid"] for e in rooms["Hauptbühne"]] == [keynote.guid]
    assert [e["guid"] for e in rooms["Raum A"]] == [workshop.guid]
    assert rooms["Raum A"][0]["language"] == "en"


def test_schedule_ics_parses_with_timezone_and_no_breaks(client, programme) -> None:
    w, keynote, workshop, _pause = programme
    response = client.get("/events/agenda-test/schedule.ics")
    assert response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.data)
    assert str(calendar["X-CONFERENCE-VERSION"]) == "2027-03-01 v1"
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {f"{keynote.guid}@agenda_test", f"{workshop.guid}@agenda_test"}
    item = events[f"{keynote.guid}@agenda_test"]
    assert item.decoded("DTSTART") == at(w.event, "09:00")
    assert item["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert str(item["SUMMARY"]) == "Keynote <b>&</b> Zukunft"
    assert str(item["LOCATION"]) == "Hauptbühne"


def test_exports_show_latest_release_and_stable_guid(client, programme, publish, xml_schema) -> None:
    w, keynote, _workshop, _pause = programme
    services.move_slot(keynote.slots[0], room=w.rooms[0], start_at=at(w.event, "11:00"),
                       end_at=at(w.event, "12:00"), actor=None)
    after_commit.commit()
    unpublished = client.get("/events/agenda-test/schedule.json").get_json()
    assert unpublished["schedule"]["conference"]["days"][0]["rooms"]["Hauptbühne"][0]["start"] == "09:00"
    publish(w.event, "v2")
    body = client.get("/events/agenda-test/schedule.json").get_json()
    item = body["schedule"]["conference"]["days"][0]["rooms"]["Hauptbühne"][0]
    assert (body["schedule"]["version"], item["start"], item["guid"]) == ("v2", "11:00", keynote.guid)
    calendar = icalendar.Calendar.from_ical(client.get("/events/agenda-test/schedule.ics").data)
    assert f"{keynote.guid}@agenda_test" in {str(e["UID"]) for e in calendar.walk("VEVENT")}


def test_cancelled_session_left_out_of_xml_and_cancelled_in_ics(client, programme, publish, xml_schema) -> None:
    w, keynote, _workshop, _pause = programme
    services.cancel_session(keynote, actor=None)
    after_commit.commit()
    publish(w.event, "v2")
    text = client.get("/events/agenda-test/schedule.xml").get_data(as_text=True)
    xml_schema.validate(text)
    assert keynote.guid not in text
    calendar = icalendar.Calendar.from_ical(client.get("/events/agenda-test/schedule.ics").data)
    statuses = {str(e["UID"]): str(e["STATUS"]) for e in calendar.walk("VEVENT")}
    assert statuses[f"{keynote.guid}@agenda_test"] == "CANCELLED"


def test_slides_attachments_from_signal(app, client, programme, xml_schema, json_schema) -> None:
    w, keynote, _workshop, _pause = programme

    def receiver(sender, event):
        return {keynote.id: [{"title": "Folien", "url": "http://localhost/files/1.pdf", "type": "slides"},
                             {"title": "Böse", "url": "javascript:alert(1)", "type": "slides"}]}

    session_attachments.connect(receiver)
    try:
        text = client.get("/events/agenda-test/schedule.xml").get_data(as_text=True)
        body = client.get("/events/agenda-test/schedule.json").get_json()
    finally:
        session_attachments.disconnect(receiver)
    xml_schema.validate(text)
    assert '<attachment href="http://localhost/files/1.pdf" type="slides">Folien</attachment>' in text
    assert "javascript" not in text
    jsonschema.validate(body, json_schema)
    item = body["schedule"]["conference"]["days"][0]["rooms"]["Hauptbühne"][0]
    assert item["attachments"] == [{"title": "Folien", "url": "http://localhost/files/1.pdf", "type": "slides"}]


def test_exports_404_before_first_release(client, agenda_world) -> None:
    for name in ("schedule.xml", "schedule.json", "schedule.ics"):
        assert client.get(f"/events/agenda-test/{name}").status_code == 404


def test_exports_of_unpublished_event_hidden(client, create_event) -> None:
    create_event("secret-event", published=False)
    assert client.get("/events/secret-event/schedule.xml").status_code == 404


def test_demo_exports_valid(client, xml_schema, json_schema) -> None:
    from conference.demo import DEMO_SLUG, load_demo

    load_demo(attendees=1)
    xml_schema.validate(client.get(f"/events/{DEMO_SLUG}/schedule.xml").get_data(as_text=True))
    jsonschema.validate(client.get(f"/events/{DEMO_SLUG}/schedule.json").get_json(), json_schema)
    calendar = icalendar.Calendar.from_ical(client.get(f"/events/{DEMO_SLUG}/schedule.ics").data)
    assert len(calendar.walk("VEVENT")) == 13  # 16 sessions, 3 of them breaks


def test_ics_description_is_plain_text_not_markdown(client, agenda_world, create_agenda_session, publish) -> None:
    w = agenda_world
    abstract = ("Ein **klarer** Blick auf *Daten* & Zahlen.\n\n"
                "- erster Punkt\n- zweiter [Link](https://example.org/mehr)\n\n"
                "Siehe <https://example.org/direkt>.")
    session = create_agenda_session(w.event, "Formatiert", room=w.rooms[0], start="09:00", end="10:00",
                                    speakers=[w.speakers[0]], abstract=abstract)
    after_commit.commit()
    publish(w.event, "v1")
    calendar = icalendar.Calendar.from_ical(client.get("/events/agenda-test/schedule.ics").data)
    item = {str(e["UID"]): e for e in calendar.walk("VEVENT")}[f"{session.guid}@agenda_test"]
    assert str(item["DESCRIPTION"]) == (
        f"{w.speakers[0].display_name}\n\n"
        "Ein klarer Blick auf Daten & Zahlen.\n\n"
        "- erster Punkt\n- zweiter Link (https://example.org/mehr)\n\n"
        "Siehe https://example.org/direkt.")


def test_agenda_version_changes_with_a_release_only_and_answers_304_when_unchanged(
        client, agenda_world, create_agenda_session, publish) -> None:
    w = agenda_world
    url = "/api/v1/events/agenda-test/agenda/version"
    assert client.get(url).get_json() == {"release": None}
    publish(w.event, "v1")
    first = client.get(url)
    assert first.get_json() == {"release": 1}
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    create_agenda_session(w.event, "Entwurf", room=w.rooms[0], start="11:00", end="12:00")  # a draft: no change
    after_commit.commit()
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    publish(w.event, "v2")
    second = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert (second.status_code, second.get_json()) == (200, {"release": 2})
