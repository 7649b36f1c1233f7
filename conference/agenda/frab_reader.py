"""Reading a frab/C3VOC schedule.xml (pretalx, frab, this platform) safely into plain data, with line numbers.

The XML is parsed by defusedxml with every DTD refused: no external entities (XXE), no entity expansion
(billion laughs), nothing fetched. Schedule files never carry a DOCTYPE. Whatever is wrong is collected
(up to MAX_ERRORS, each with its line) and raised at once as `ScheduleFileError`; nothing is written here.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from flask_babel import gettext as _

from conference.agenda.fields import ABSTRACT_MAX, COLOR_PATTERN, NAME_MAX, TITLE_MAX  # the editor's limits

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_SESSIONS = 5000
MAX_PERSONS = 20
MAX_ERRORS = 50
GUID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
DURATION_PATTERN = re.compile(r"^(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?::(\d{2}))?$")
EMAIL_PATTERN = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,189}$")
#: frab `type` values (pretalx: the submission type's name) mapped to our kinds; anything else is a talk.
KIND_WORDS = {"keynote": "keynote", "talk": "talk", "vortrag": "talk", "lecture": "talk", "panel": "panel",
              "podium": "panel", "podiumsdiskussion": "panel", "diskussion": "panel", "workshop": "workshop",
              "break": "break", "pause": "break", "networking": "networking"}
FORBIDDEN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ufffd]")


class ScheduleFileError(Exception):
    """The file cannot be imported; `problems` lists every reason found, each with its line where known."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ImportedPerson:
    name: str
    email: str | None = None


@dataclass(frozen=True)
class ImportedSession:
    guid: str
    title: str
    abstract: str
    kind: str
    language: str
    track: str | None
    room: str
    start_at: datetime  # aware, UTC
    end_at: datetime
    persons: tuple[ImportedPerson, ...]
    line: int


@dataclass(frozen=True)
class ParsedSchedule:
    """A schedule file as plain data: what the import plans from (and what a preview stores)."""

    title: str
    acronym: str
    version: str
    generator: str
    rooms: tuple[str, ...]
    tracks: tuple[tuple[str, str | None], ...]  # (name, colour)
    sessions: tuple[ImportedSession, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for entry in data["sessions"]:
            entry["start_at"] = entry["start_at"].isoformat()
            entry["end_at"] = entry["end_at"].isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParsedSchedule:
        sessions = tuple(ImportedSession(
            **{**s, "start_at": datetime.fromisoformat(s["start_at"]), "end_at": datetime.fromisoformat(s["end_at"]),
               "persons": tuple(ImportedPerson(**p) for p in s["persons"])}) for s in data["sessions"])
        return cls(data["title"], data["acronym"], data["version"], data["generator"], tuple(data["rooms"]),
                   tuple((name, color) for name, color in data["tracks"]), sessions, tuple(data["warnings"]))


class _LineTreeBuilder(ET.TreeBuilder):
    """Remembers the line each element starts on (expat knows it while the start tag is handled)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[ET.Element, int] = {}
        self.parser: Any = None

    def start(self, tag: Any, attrs: Any) -> ET.Element:
        element = super().start(tag, attrs)
        self.lines[element] = self.parser.parser.CurrentLineNumber
        return element


def parse_schedule(data: bytes, *, default_timezone: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedSchedule:
    """Parse and check a schedule.xml. Raises `ScheduleFileError` listing what is wrong."""
    if len(data) > max_bytes:
        raise ScheduleFileError([_("The file has %(size)s MB; at most %(limit)s MB can be imported.",
                                   size=f"{len(data) / 1048576:.1f}", limit=f"{max_bytes / 1048576:.3g}")])
    if not data.strip():
        raise ScheduleFileError([_("The file is empty.")])
    builder = _LineTreeBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.parser = parser
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException:
        raise ScheduleFileError([_(
            "line %(line)d: the file declares a DTD or entities; schedule files never do, and they are refused "
            "(they can read files of the server or expand to gigabytes).", line=parser.parser.CurrentLineNumber)]) \
            from None
    except ET.ParseError as error:
        line, column = error.position
        raise ScheduleFileError([_("line %(line)d, column %(column)d: not well-formed XML (%(reason)s).", line=line,
                                   column=column + 1, reason=str(error).split(":")[0])]) from None
    return _Reader(builder.lines, default_timezone).read(root)


class _Reader:
    def __init__(self, lines: dict[ET.Element, int], default_timezone: str) -> None:
        self.lines = lines
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.zone_name = default_timezone

    def error(self, element: ET.Element | None, message: str) -> None:
        line = self.lines.get(element) if element is not None else None
        self.errors.append(_("line %(line)d: %(message)s", line=line, message=message) if line else message)
        if len(self.errors) >= MAX_ERRORS:
            raise ScheduleFileError([*self.errors, _("... stopped after %(n)d problems.", n=MAX_ERRORS)])

    def text(self, element: ET.Element, name: str, *, max_length: int | None = None,
             required: bool = False) -> str:
        child = element.find(name)
        value = (child.text or "").strip() if child is not None else ""
        if required and not value:
            self.error(element, _("<%(parent)s> needs a non-empty <%(name)s>.", parent=element.tag, name=name))
        if FORBIDDEN_TEXT.search(value):
            self.error(child, _("<%(name)s> contains control or direction-override characters.", name=name))
        if max_length is not None and len(value) > max_length:
            self.error(child, _("<%(name)s> has %(n)d characters; at most %(max)d are allowed.", name=name,
                                n=len(value), max=max_length))
        return value

    def read(self, root: ET.Element) -> ParsedSchedule:
        if root.tag != "schedule":
            raise ScheduleFileError([_("line %(line)d: the root element is <%(tag)s>, expected <schedule> (a "
                                       "frab/pretalx schedule.xml).", line=self.lines.get(root, 1), tag=root.tag)])
        conference = root.find("conference")
        if conference is None:
            self.error(root, _("<schedule> needs a <conference> element."))
            conference = ET.Element("conference")
        zone_name = self.text(conference, "time_zone_name") or self.zone_name
        try:
            zone = ZoneInfo(zone_name)
            self.zone_name = zone_name
        except (ZoneInfoNotFoundError, ValueError):
            self.error(conference.find("time_zone_name"), _("unknown time zone %(zone)s.", zone=repr(zone_name)))
            zone = ZoneInfo(self.zone_name)
        generator = root.find("generator")
        tracks: dict[str, tuple[str, str | None]] = {}
        for track in conference.findall("track"):
            name = (track.get("name") or track.text or "").strip()
            color = track.get("color")
            if name and name.casefold() not in tracks:
                tracks[name.casefold()] = (name[:NAME_MAX], color if color and COLOR_PATTERN.match(color) else None)
        rooms: dict[str, str] = {}
        sessions: list[ImportedSession] = []
        seen: dict[str, int] = {}
        days = root.findall("day")
        if not days:
            self.error(root, _("the file has no <day>: nothing to import."))
        for day in days:
            day_date = self._date(day, day.get("date"))
            for room in day.findall("room"):
                room_name = (room.get("name") or "").strip()
                if not room_name or len(room_name) > NAME_MAX or FORBIDDEN_TEXT.search(room_name):
                    self.error(room, _("<room> needs a name of 1 to %(n)d plain characters.", n=NAME_MAX))
                    continue
                rooms.setdefault(room_name.casefold(), room_name)
                for event in room.findall("event"):
                    entry = self._session(event, rooms[room_name.casefold()], day_date, zone, tracks,
                                          (self.text(conference, "acronym") or "frab"))
                    if entry is None:
                        continue
                    if entry.guid in seen:
                        self.error(event, _("the guid %(guid)s appears twice (first on line %(line)d).",
                                            guid=entry.guid, line=seen[entry.guid]))
                        continue
                    seen[entry.guid] = entry.line
                    sessions.append(entry)
                    if len(sessions) > MAX_SESSIONS:
                        raise ScheduleFileError([_("more than %(n)d sessions; split the file.", n=MAX_SESSIONS)])
        if self.errors:
            raise ScheduleFileError(self.errors)
        sessions.sort(key=lambda s: (s.start_at, s.room.casefold(), s.guid))
        return ParsedSchedule(
            title=self.text(conference, "title", max_length=200), acronym=self.text(conference, "acronym")[:60],
            version=(root.findtext("version") or "").strip()[:60],
            generator=f"{generator.get('name', '')} {generator.get('version', '')}".strip()
            if generator is not None else "",
            rooms=tuple(rooms.values()), tracks=tuple(tracks.values()), sessions=tuple(sessions),
            warnings=tuple(self.warnings))

    def _date(self, element: ET.Element, value: str | None) -> date | None:
        try:
            return date.fromisoformat((value or "").strip()[:10])
        except ValueError:
            self.error(element, _("<%(tag)s> has no valid date (%(value)s).", tag=element.tag, value=repr(value)))
            return None

    def _session(self, event: ET.Element, room: str, day: date | None, zone: ZoneInfo,
                 tracks: dict[str, tuple[str, str | None]], acronym: str) -> ImportedSession | None:
        errors_before = len(self.errors)
        line = self.lines.get(event, 0)
        guid = (event.get("guid") or "").strip()
        if not guid:
            if not (event.get("id") or "").strip():
                self.error(event, _("<event> needs a guid (or at least an id) to be matched on the next import."))
                return None
            guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"frab:{acronym}/{event.get('id', '').strip()}"))
            self.warnings.append(_("line %(line)d: <event> without guid; matched by its id %(id)s instead.",
                                   line=line, id=event.get("id")))
        elif not GUID_PATTERN.match(guid):
            self.error(event, _("the guid %(guid)s is not an identifier (letters, digits, . _ : -, at most 64).",
                                guid=repr(guid[:80])))
        title = self.text(event, "title", max_length=TITLE_MAX, required=True)
        start_at = self._start(event, day, zone)
        length = self._duration(event)
        abstract = self.text(event, "abstract")
        description = self.text(event, "description")
        if description and description != abstract:
            abstract = f"{abstract}\n\n{description}" if abstract else description
        if len(abstract) > ABSTRACT_MAX:
            self.warnings.append(_("line %(line)d: abstract and description cut to %(n)d characters.", line=line,
                                   n=ABSTRACT_MAX))
            abstract = abstract[:ABSTRACT_MAX].rstrip()
        kind_word = self.text(event, "type").casefold()
        language = self.text(event, "language").casefold()[:2]
        if language not in ("de", "en"):
            if language:
                self.warnings.append(_("line %(line)d: language %(language)s is neither de nor en; imported as de.",
                                       line=line, language=repr(language)))
            language = "de"
        track = self.text(event, "track")
        if track and track.casefold() not in tracks:
            tracks[track.casefold()] = (track[:NAME_MAX], None)
        persons = self._persons(event)
        if len(self.errors) > errors_before or start_at is None or length is None:
            return None
        return ImportedSession(
            guid=guid, title=title, abstract=abstract, kind=KIND_WORDS.get(kind_word, "talk"), language=language,
            track=tracks[track.casefold()][0] if track else None, room=room,
            start_at=start_at.astimezone(UTC), end_at=(start_at + length).astimezone(UTC), persons=persons, line=line)

    def _start(self, event: ET.Element, day: date | None, zone: ZoneInfo) -> datetime | None:
        text = self.text(event, "date")
        try:
            when = datetime.fromisoformat(text) if "T" in text else None
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            return when
        clock = self.text(event, "start", required=True)
        base = when.date() if when is not None else (date.fromisoformat(text[:10]) if re.match(
            r"^\d{4}-\d{2}-\d{2}$", text[:10]) else day)
        match = re.match(r"^(\d{1,2}):(\d{2})$", clock)
        if base is None or match is None or int(match[1]) > 23 or int(match[2]) > 59:
            self.error(event, _("<event> has no valid start (date %(date)s, start %(start)s).", date=repr(text),
                                start=repr(clock)))
            return None
        return datetime.combine(base, time(int(match[1]), int(match[2])), zone)

    def _duration(self, event: ET.Element) -> timedelta | None:
        text = self.text(event, "duration", required=True)
        match = DURATION_PATTERN.match(text)
        if match is None:
            if text:
                self.error(event.find("duration"), _("<duration> %(value)s is not HH:MM.", value=repr(text)))
            return None
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        length = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if not timedelta(0) < length <= timedelta(hours=24):
            self.error(event.find("duration"), _("<duration> %(value)s must be longer than 0 and at most 24 hours.",
                                                 value=repr(text)))
            return None
        return length

    def _persons(self, event: ET.Element) -> tuple[ImportedPerson, ...]:
        persons: list[ImportedPerson] = []
        container = event.find("persons")
        for person in container.findall("person") if container is not None else []:
            name = " ".join((person.text or person.get("public_name") or person.get("name") or "").split())
            if not name:
                continue
            if len(name) > NAME_MAX or FORBIDDEN_TEXT.search(name):
                self.error(person, _("a person's name must have 1 to %(n)d plain characters.", n=NAME_MAX))
                continue
            email = (person.get("email") or "").strip().lower() or None
            if email and not EMAIL_PATTERN.match(email):
                self.warnings.append(_("line %(line)d: e-mail %(email)s ignored (not an address).",
                                       line=self.lines.get(person, 0), email=repr(email[:80])))
                email = None
            if any(p.name.casefold() == name.casefold() for p in persons):
                continue
            persons.append(ImportedPerson(name=name, email=email))
        if len(persons) > MAX_PERSONS:
            self.error(container, _("at most %(n)d persons per session.", n=MAX_PERSONS))
        return tuple(persons)
