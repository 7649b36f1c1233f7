"""Exports of the published schedule: frab/C3VOC schedule.xml and schedule.json, and iCalendar (RFC 5545).

Breaks are left out of all three (as pretalx does); cancelled sessions are left out of the XML and JSON and
appear in iCalendar with STATUS:CANCELLED so that subscribed calendars drop them.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import icalendar
from flask import current_app

from conference.agenda.schedule import PSession, Schedule
from conference.agenda.snapshots import person_guid
from conference.core.rendering import markdown_to_text
from conference.core.signals import session_attachments
from conference.events.models import Event

GENERATOR = {"name": "conference", "version": "0.1.0"}
SCHEMA_URL = "https://c3voc.de/schedule/schema.json"
ZONE_NAME_PATTERN = re.compile(r"^([A-Z][a-z]+/[A-Z][a-z]+)|UTC$")
TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
REFERENCE_TYPES = {"slides", "paper", "web", "blog", "article", "media", "related", "activitypub"}

UrlFor = Callable[[int], str]
Attachments = dict[int, list[dict[str, str]]]


def duration_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def slugify(text: str, *, fallback: str = "session", max_length: int = 60) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.translate(TRANSLITERATION)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_length].strip("-")
    return slug or fallback


def acronym_for(event: Event) -> str:
    """The event's short name in the form the C3VOC schemas accept (e.g. digitalkonferenz_2027)."""
    acronym = re.sub(r"[^a-z0-9_]", "_", event.slug.lower())
    return acronym if len(acronym) >= 4 else acronym.ljust(4, "_")


def exported_sessions(schedule: Schedule, *, with_cancelled: bool = False) -> list[PSession]:
    return [s for s in schedule.sessions if not s.is_break and s.slots and (with_cancelled or not s.cancelled)]


def attachments_by_session(event: Event) -> Attachments:
    """Ask the other domains (presentations) for published attachments; keep only well-formed ones.

    They change without a release (a deck published, hidden, replaced, or published as its session ends), so
    the cached exports are keyed by this result, asked for on every request."""
    merged: Attachments = {}
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for _receiver, result in session_attachments.send(app, event=event):
        if not isinstance(result, dict):
            continue
        for session_id, items in result.items():
            for item in items or []:
                url = str(item.get("url", ""))
                if not re.match(r"^https?://\S+$", url):
                    continue
                kind = str(item.get("type", "slides"))
                merged.setdefault(int(session_id), []).append({
                    "title": str(item.get("title") or url), "url": url,
                    "type": kind if kind in REFERENCE_TYPES else "related"})
    return merged


def _days(event: Event, schedule: Schedule) -> list[tuple[int, date, datetime, datetime]]:
    """(index from 1, date, first start, last end) for every day of the event."""
    zone = event.zone
    result = []
    for index, day in enumerate(event.days(), start=1):
        slots = [slot for s in schedule.sessions for slot in s.slots if schedule.local_day(slot.start_at) == day]
        if slots:
            start, end = min(s.start_at for s in slots), max(s.end_at for s in slots)
        else:
            start = datetime.combine(day, datetime.min.time(), zone)
            end = start + timedelta(hours=23, minutes=59)
        result.append((index, day, start.astimezone(zone), end.astimezone(zone)))
    return result


def event_slug_for(acronym: str, entry: PSession) -> str:
    return f"{acronym}-{entry.id}-{slugify(entry.title, max_length=50)}"


def schedule_xml(event: Event, schedule: Schedule, *, self_url: str, base_url: str, session_url: UrlFor,
                 speaker_url: UrlFor | None = None, attachments: Attachments | None = None) -> bytes:
    """frab/C3VOC schedule.xml (validates against shared/formats/schedule.xml.xsd)."""
    zone, acronym = event.zone, acronym_for(event)
    attachments = attachments_by_session(event) if attachments is None else attachments
    root = ET.Element("schedule")
    ET.SubElement(root, "generator", name=GENERATOR["name"], version=GENERATOR["version"])
    ET.SubElement(root, "url").text = self_url
    ET.SubElement(root, "version").text = schedule.version or ""
    conference = ET.SubElement(root, "conference")
    ET.SubElement(conference, "acronym").text = acronym
    ET.SubElement(conference, "title").text = event.title
    ET.SubElement(conference, "start").text = event.start_date.isoformat()
    ET.SubElement(conference, "end").text = event.end_date.isoformat()
    ET.SubElement(conference, "days").text = str(len(event.days()))
    ET.SubElement(conference, "timeslot_duration").text = "00:05"
    ET.SubElement(conference, "base_url").text = base_url
    ET.SubElement(conference, "time_zone_name").text = event.timezone
    for track in schedule.tracks:
        ET.SubElement(conference, "track", name=track.name, color=track.color,
                      slug=_track_slug(track.name)).text = track.name
    sessions = exported_sessions(schedule)
    for index, day, start, end in _days(event, schedule):
        day_el = ET.SubElement(root, "day", index=str(index), date=day.isoformat(), start=start.isoformat(),
                               end=end.isoformat())
        for room in schedule.rooms:
            room_el = ET.SubElement(day_el, "room", name=room.name, guid=room.guid)
            for entry in sessions:
                slot = entry.slots[0]
                if slot.room.id != room.id or schedule.local_day(slot.start_at) != day:
                    continue
                local = slot.start_at.astimezone(zone)
                ev = ET.SubElement(room_el, "event", guid=entry.guid, id=str(entry.id))
                ET.SubElement(ev, "room").text = room.name
                ET.SubElement(ev, "title").text = entry.title
                ET.SubElement(ev, "subtitle").text = ""
                ET.SubElement(ev, "type").text = entry.kind
                ET.SubElement(ev, "date").text = local.isoformat()
                ET.SubElement(ev, "start").text = f"{local:%H:%M}"
                ET.SubElement(ev, "duration").text = duration_text(slot.end_at - slot.start_at)
                ET.SubElement(ev, "abstract").text = entry.abstract
                ET.SubElement(ev, "slug").text = event_slug_for(acronym, entry)
                ET.SubElement(ev, "track").text = entry.track.name if entry.track else ""
                ET.SubElement(ev, "language").text = entry.language
                ET.SubElement(ev, "description").text = ""
                persons = ET.SubElement(ev, "persons")
                for speaker in entry.speakers:
                    ET.SubElement(persons, "person", id=str(speaker.id),
                                  guid=person_guid(event.slug, speaker.id)).text = speaker.display_name
                ET.SubElement(ev, "links")
                attached = ET.SubElement(ev, "attachments")
                for item in attachments.get(entry.id, []):
                    ET.SubElement(attached, "attachment", href=item["url"], type=item["type"]).text = item["title"]
                ET.SubElement(ev, "url").text = session_url(entry.id)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _track_slug(name: str) -> str:
    slug = slugify(name, fallback="track")
    return slug if slug[0].isalpha() else f"track-{slug}"


def schedule_json(event: Event, schedule: Schedule, *, base_url: str, session_url: UrlFor,
                  speaker_url: UrlFor | None = None, attachments: Attachments | None = None) -> dict[str, Any]:
    """frab/C3VOC schedule.json (validates against shared/formats/json/schema.json)."""
    zone, acronym = event.zone, acronym_for(event)
    attachments = attachments_by_session(event) if attachments is None else attachments
    sessions = exported_sessions(schedule)
    days = []
    for index, day, start, end in _days(event, schedule):
        rooms: dict[str, list[dict[str, Any]]] = {}
        for room in schedule.rooms:
            items = rooms.setdefault(room.name, [])
            for entry in sessions:
                slot = entry.slots[0]
                if slot.room.id != room.id or schedule.local_day(slot.start_at) != day:
                    continue
                local = slot.start_at.astimezone(zone)
                persons = [{"guid": person_guid(event.slug, p.id), "name": p.display_name,
                            **({"url": speaker_url(p.id)} if speaker_url else {})} for p in entry.speakers]
                items.append({
                    "guid": entry.guid, "id": entry.id, "date": local.isoformat(), "start": f"{local:%H:%M}",
                    "end": slot.end_at.astimezone(zone).isoformat(),
                    "duration": duration_text(slot.end_at - slot.start_at), "room": room.name,
                    "slug": event_slug_for(acronym, entry), "url": session_url(entry.id), "title": entry.title,
                    "subtitle": "", "track": entry.track.name if entry.track else None, "type": entry.kind,
                    "language": entry.language, "abstract": entry.abstract, "description": "",
                    "persons": persons, "links": [], "attachments": attachments.get(entry.id, []),
                })
        days.append({"index": index, "date": day.isoformat(), "day_start": start.isoformat(),
                     "day_end": end.isoformat(), "rooms": rooms})
    conference: dict[str, Any] = {
        "acronym": acronym, "title": event.title, "start": event.start_date.isoformat(),
        "end": event.end_date.isoformat(), "daysCount": len(event.days()), "timeslot_duration": "00:05",
        "url": base_url,
        "tracks": [{"name": t.name, "slug": _track_slug(t.name), "color": t.color} for t in schedule.tracks],
        "rooms": [{"name": r.name, "guid": r.guid, "slug": slugify(r.name, fallback=f"room-{r.id}")}
                  for r in schedule.rooms],
        "days": days,
    }
    if ZONE_NAME_PATTERN.search(event.timezone):
        conference["time_zone_name"] = event.timezone
    return {"$schema": SCHEMA_URL, "generator": GENERATOR,
            "schedule": {"version": schedule.version or "", "base_url": base_url, "conference": conference}}


def schedule_ics(event: Event, schedule: Schedule, entries: list[PSession], *, name: str, session_url: UrlFor,
                 stamp: datetime) -> bytes:
    """iCalendar with the event's VTIMEZONE and one VEVENT per session (breaks are not listed)."""
    zone = event.zone
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//conference//agenda//DE")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", event.timezone)
    calendar.add("x-conference-version", schedule.version or "")
    for entry in entries:
        if entry.is_break or not entry.slots:
            continue
        slot = entry.slots[0]
        item = icalendar.Event()
        item.add("uid", f"{entry.guid}@{acronym_for(event)}")
        item.add("dtstamp", stamp)
        item.add("dtstart", slot.start_at.astimezone(zone))
        item.add("dtend", slot.end_at.astimezone(zone))
        item.add("summary", entry.title)
        speakers = ", ".join(p.display_name for p in entry.speakers)
        # Calendars show DESCRIPTION as plain text: the abstract's Markdown as a reader sees it, no ** or [](...).
        item.add("description", "\n\n".join(part for part in (speakers, markdown_to_text(entry.abstract)) if part))
        item.add("location", ", ".join(room.name for room in entry.rooms))
        item.add("url", session_url(entry.id))
        if entry.track:
            item.add("categories", [entry.track.name])
        item.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
        calendar.add_component(item)
    days = event.days()
    # Always include the zone (also in an empty personal calendar), covering the event's days.
    calendar.subcomponents.insert(0, icalendar.Timezone.from_tzid(
        event.timezone, first_date=days[0] - timedelta(days=1), last_date=days[-1] + timedelta(days=2)))
    return calendar.to_ical()
