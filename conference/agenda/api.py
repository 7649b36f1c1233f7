"""JSON API of the agenda: the published sessions for everyone; writes for organisers; stars for people.

Every invalid input is a 4xx naming the field, and nothing is stored (the error handler rolls back).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from conference.agenda import openapi, pagecache, services
from conference.agenda.blueprint import bp
from conference.agenda.conflicts import Problem
from conference.agenda.fields import ABSTRACT_MAX, RELEASE_NAME_MAX, TITLE_MAX
from conference.agenda.lookups import (
    released_session_in_event,
    room_in_event,
    session_in_event,
    slot_in_event,
    speakers_in_event,
    track_in_event,
)
from conference.agenda.models import AgendaRelease, ConferenceSession, SpeakerRole, TimetableSlot
from conference.agenda.personal import star_session, starred_session_ids, unstar_session
from conference.agenda.public import released_sessions
from conference.agenda.releases import publish_release
from conference.agenda.schedule import (
    Schedule,
    latest_release_number,
    published_schedule,
    session_payload,
    working_schedule,
)
from conference.core import after_commit
from conference.core.api import Unauthenticated, api_login_required, field, id_field, json_body
from conference.core.errors import Conflict, NotAllowed, NotFound, Unprocessable, ValidationFailed
from conference.core.ids import require_id
from conference.core.openapi import TIME_MAX_LENGTH, TIME_PATTERN, openapi_document
from conference.core.permissions import Permission, has_permission
from conference.core.timeutil import isoformat, parse_iso_datetime
from conference.events.access import event_permission_required, load_event
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile

SESSION_FIELDS = {"title", "abstract", "kind", "language", "track_id", "speakers", "room_id", "start", "end",
                  "cancelled"}
SLOT_FIELDS = {"room_id", "start", "end"}
TIME_FORMAT = re.compile(TIME_PATTERN)
bp.record_once(lambda state: openapi.register(state.app))  # type: ignore[arg-type]


@bp.route("/api/v1/openapi.json")
def api_openapi() -> Any:
    return jsonify(openapi_document())


def _schedule_for_request(event: Event) -> Schedule | None:
    state = request.args.get("state", "published")
    if state == "working":
        if not current_user.is_authenticated:
            raise Unauthenticated(_("Log in or send an API token (Authorization: Bearer ...)."), field="state")
        if not has_permission(current_user, event, Permission.MANAGE_AGENDA):
            raise NotAllowed(_("Only organisers may see the working agenda."), field="state")
        return working_schedule(event)
    if state != "published":
        raise ValidationFailed(_("state is 'published' or 'working'."), field="state")
    return published_schedule(event)


@bp.route("/api/v1/events/<slug>/sessions", methods=["GET"])
def api_sessions(slug: str) -> Any:
    event = load_event(slug)
    schedule = _schedule_for_request(event)
    if schedule is None:
        return jsonify({"version": None, "sessions": []})

    published: Schedule = schedule

    def build() -> bytes:
        return bytes(jsonify({"version": published.version,
                              "sessions": [session_payload(entry, published) for entry in published.sessions]})
                     .get_data())

    if request.args.get("state", "published") != "published":
        return Response(build(), mimetype="application/json")
    key = pagecache.release_key(event, published, "api-sessions")  # a release reads the same for everyone
    return Response(pagecache.cached(key, build), mimetype="application/json")


@bp.route("/api/v1/events/<slug>/sessions/<int:session_id>", methods=["GET"])
def api_session(slug: str, session_id: int) -> Any:
    event = load_event(slug)
    schedule = _schedule_for_request(event)
    entry = schedule.session(session_id) if schedule else None
    if schedule is None or entry is None:
        raise NotFound(_("No such session."))
    return jsonify(session_payload(entry, schedule))


# --- organiser writes ---------------------------------------------------------------------------


def _reject_unknown(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationFailed(_("Unknown field '%(name)s'.", name=unknown[0]), field=unknown[0])


def _speakers(event: Event, value: Any) -> list[tuple[SpeakerProfile, str]]:
    if not isinstance(value, list):
        raise ValidationFailed(_("speakers must be a list."), field="speakers")
    entries: list[tuple[Any, Any]] = []
    for item in value:
        if isinstance(item, dict):
            if set(item) - {"id", "role"}:
                raise ValidationFailed(_("A speaker is {\"id\": ..., \"role\": ...}."), field="speakers")
            entries.append((require_id(item.get("id"), field="speakers"),
                            item.get("role", SpeakerRole.SPEAKER.value)))
        else:
            entries.append((require_id(item, field="speakers"), SpeakerRole.SPEAKER.value))
    return speakers_in_event(event, entries)


def _time(event: Event, data: dict[str, Any], name: str) -> datetime:
    """A time of the documented shape (`TIME_PATTERN`: 400 otherwise); one of that shape that names no real time
    (30 February, or past the calendar's end once moved to UTC) is 422."""
    value = field(data, name, str, max_length=TIME_MAX_LENGTH)
    if not TIME_FORMAT.fullmatch(value):
        raise ValidationFailed(_("'%(name)s' must be an ISO 8601 time such as 2027-03-18T09:00:00+01:00.",
                                 name=name), field=name)
    try:
        return parse_iso_datetime(value, event.timezone)
    except (ValueError, OverflowError):
        raise Unprocessable(_("'%(name)s' names a time that does not exist.", name=name), field=name,
                            code="no_such_time") from None


def _place(event: Event, data: dict[str, Any], slot: TimetableSlot | None = None) -> tuple[Any, datetime, datetime]:
    room = room_in_event(event, id_field(data, "room_id")) if "room_id" in data or slot is None \
        else slot.room
    start = _time(event, data, "start") if "start" in data or slot is None else slot.start_at
    end = _time(event, data, "end") if "end" in data or slot is None else slot.end_at
    return room, start, end


def _schedule(event: Event, session: ConferenceSession, data: dict[str, Any]) -> list[Problem]:
    """Give the session a slot at the request's room_id, start and end; the warnings."""
    room, start, end = _place(event, data)
    return services.schedule_session(session, room=room, start_at=start, end_at=end, actor=current_user)[1]


def _move(event: Event, slot: TimetableSlot, data: dict[str, Any]) -> list[Problem]:
    """Move the slot to the request's room_id, start and end (each left out keeps the slot's own); the warnings."""
    room, start, end = _place(event, data, slot)
    return services.move_slot(slot, room=room, start_at=start, end_at=end, actor=current_user)


def _session_response(event: Event, session_id: int, warnings: list[Problem], status: int = 200) -> Any:
    schedule = working_schedule(event, ids=[session_id])
    entry = schedule.session(session_id)
    assert entry is not None
    return jsonify({"session": session_payload(entry, schedule),
                    "warnings": [w.as_dict() for w in warnings]}), status


@bp.route("/api/v1/events/<slug>/sessions", methods=["POST"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_create_session(event: Event) -> Any:
    data = json_body()
    _reject_unknown(data, SESSION_FIELDS - {"cancelled"})
    track = track_in_event(event, id_field(data, "track_id", required=False))
    speakers = _speakers(event, data["speakers"]) if data.get("speakers") is not None else []
    kind, language = field(data, "kind", str, required=False), field(data, "language", str, required=False)
    session = services.create_session(
        event, title=field(data, "title", str, max_length=TITLE_MAX),
        abstract=field(data, "abstract", str, required=False, max_length=ABSTRACT_MAX) or "",
        kind="talk" if kind is None else kind, language=event.language if language is None else language,
        track=track, speakers=speakers, actor=current_user)
    warnings = _schedule(event, session, data) if any(key in data for key in SLOT_FIELDS) else []
    after_commit.commit()
    return _session_response(event, session.id, warnings, 201)


@bp.route("/api/v1/events/<slug>/sessions/<int:session_id>", methods=["PATCH"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_update_session(event: Event, session_id: int) -> Any:
    session = session_in_event(event, session_id)
    data = json_body()
    _reject_unknown(data, SESSION_FIELDS)
    changes: dict[str, Any] = {}
    for name, kind, limit in (("title", str, TITLE_MAX), ("abstract", str, ABSTRACT_MAX),
                              ("kind", str, 16), ("language", str, 5)):
        if name in data:
            changes[name] = field(data, name, kind, max_length=limit)
    if "track_id" in data:
        changes["track"] = track_in_event(event, id_field(data, "track_id", required=False))
    if "speakers" in data:
        changes["speakers"] = _speakers(event, data["speakers"])
    warnings = services.update_session(session, actor=current_user, **changes)
    if "cancelled" in data:
        if field(data, "cancelled", bool):
            services.cancel_session(session, actor=current_user)
        else:
            warnings += services.restore_session(session, actor=current_user)
    if any(key in data for key in SLOT_FIELDS):
        warnings += _place_single(event, session, data)
    after_commit.commit()
    return _session_response(event, session.id, warnings)


def _place_single(event: Event, session: ConferenceSession, data: dict[str, Any]) -> list[Problem]:
    """PATCH with room/start/end: schedule an unscheduled session or move its only slot."""
    if len(session.slots) > 1:
        raise Conflict(_("This session has several slots; change them one by one."), field="room_id",
                       code="several_slots")
    if not session.slots:
        missing = sorted(SLOT_FIELDS - set(data))
        if missing:
            raise Unprocessable(_("The session has no slot yet: send room_id, start and end to schedule it."),
                                field=missing[0], code="not_scheduled")
        return _schedule(event, session, data)
    return _move(event, session.slots[0], data)


@bp.route("/api/v1/events/<slug>/sessions/<int:session_id>", methods=["DELETE"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_delete_session(event: Event, session_id: int) -> Any:
    services.delete_session(session_in_event(event, session_id), actor=current_user)
    after_commit.commit()
    return "", 204


@bp.route("/api/v1/events/<slug>/sessions/<int:session_id>/slots", methods=["POST"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_create_slot(event: Event, session_id: int) -> Any:
    session = session_in_event(event, session_id)
    data = json_body()
    _reject_unknown(data, SLOT_FIELDS)
    warnings = _schedule(event, session, data)
    after_commit.commit()
    return _session_response(event, session.id, warnings, 201)


@bp.route("/api/v1/events/<slug>/sessions/<int:session_id>/copy-break", methods=["POST"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_copy_break(event: Event, session_id: int) -> Any:
    session = session_in_event(event, session_id)
    services.copy_break_to_all_rooms(session, actor=current_user)
    after_commit.commit()
    return _session_response(event, session.id, [])


@bp.route("/api/v1/events/<slug>/slots/<int:slot_id>", methods=["PATCH"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_move_slot(event: Event, slot_id: int) -> Any:
    slot = slot_in_event(event, slot_id)
    data = json_body()
    _reject_unknown(data, SLOT_FIELDS)
    warnings = _move(event, slot, data)
    session_id = slot.session_id
    after_commit.commit()
    return _session_response(event, session_id, warnings)


@bp.route("/api/v1/events/<slug>/slots/<int:slot_id>", methods=["DELETE"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_delete_slot(event: Event, slot_id: int) -> Any:
    services.delete_slot(slot_in_event(event, slot_id), actor=current_user)
    after_commit.commit()
    return "", 204


def release_payload(release: AgendaRelease, timezone: str) -> dict[str, Any]:
    import json

    return {"version": release.name, "sequence": release.sequence,
            "published_at": isoformat(release.published_at, timezone), "changes": json.loads(release.changes)}


@bp.route("/api/v1/events/<slug>/agenda/version", methods=["GET"])
def api_agenda_version(slug: str) -> Any:
    """The latest release's number, polled by the public agenda of visitors without a live connection. The ETag
    lets a poll that finds nothing new cost a 304 without a body."""
    event = load_event(slug)
    number = latest_release_number(event)
    response = jsonify({"release": number})
    response.set_etag(f"release-{event.id}-{number}")
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)


@bp.route("/api/v1/events/<slug>/releases", methods=["GET"])
def api_releases(slug: str) -> Any:
    event = load_event(slug)
    releases = db.session.scalars(select(AgendaRelease).where(AgendaRelease.event_id == event.id)
                                  .order_by(AgendaRelease.sequence.desc())).all()
    return jsonify({"releases": [release_payload(r, event.timezone) for r in releases]})


@bp.route("/api/v1/events/<slug>/releases", methods=["POST"])
@event_permission_required(Permission.MANAGE_AGENDA)
def api_publish(event: Event) -> Any:
    data = json_body()
    _reject_unknown(data, {"name"})
    release = publish_release(event, name=field(data, "name", str, max_length=RELEASE_NAME_MAX),
                              actor=current_user)
    after_commit.commit()
    return jsonify(release_payload(release, event.timezone)), 201


# --- personal agenda ----------------------------------------------------------------------------


@bp.route("/api/v1/events/<slug>/starred", methods=["GET"])
@api_login_required
def api_starred(slug: str) -> Any:
    event = load_event(slug)
    released = {entry.id for entry in released_sessions(event)}
    return jsonify({"sessions": sorted(starred_session_ids(event, current_user) & released)})


@bp.route("/api/v1/events/<slug>/sessions/<int:session_id>/star", methods=["PUT", "DELETE"])
@api_login_required
def api_star(slug: str, session_id: int) -> Any:
    event = load_event(slug)
    session = released_session_in_event(event, session_id)
    if request.method == "PUT":
        star_session(session, user=current_user)
    else:
        unstar_session(session, user=current_user)
    after_commit.commit()
    return "", 204
