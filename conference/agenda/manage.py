"""The organiser's agenda editor under /manage/events/<slug>/agenda: HTML forms; rules in the services."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from conference.agenda import services
from conference.agenda.blueprint import bp
from conference.agenda.conflicts import Problem, agenda_problems
from conference.agenda.forms import (
    KIND_LABELS,
    SPEAKER_ROWS,
    ActionForm,
    ReleaseForm,
    RoomForm,
    SessionForm,
    SlotForm,
    TrackForm,
)
from conference.agenda.lookups import room_in_event, session_in_event, slot_in_event, speakers_in_event, track_in_event
from conference.agenda.models import AgendaRelease, Room, Track
from conference.agenda.releases import publish_release
from conference.agenda.rooms import create_room, create_track, delete_room, delete_track, update_room, update_track
from conference.agenda.schedule import working_schedule
from conference.core import after_commit
from conference.core.errors import DomainError
from conference.core.ids import parse_id
from conference.core.permissions import Permission
from conference.events.access import event_permission_required
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile

MANAGE = Permission.MANAGE_AGENDA


def _rooms(event: Event) -> list[Room]:
    return list(db.session.scalars(select(Room).where(Room.event_id == event.id).order_by(Room.position, Room.id)))


def _tracks(event: Event) -> list[Track]:
    return list(db.session.scalars(select(Track).where(Track.event_id == event.id).order_by(Track.name)))


def _profiles(event: Event) -> list[SpeakerProfile]:
    return list(db.session.scalars(select(SpeakerProfile).where(SpeakerProfile.event_id == event.id)
                                   .order_by(SpeakerProfile.name)))


def _flash_warnings(warnings: list[Problem]) -> None:
    for warning in warnings:
        flash(_("Warning: %(message)s", message=warning.message), "warning")


def _editor(event: Event) -> Any:
    return redirect(url_for("agenda.manage_agenda", slug=event.slug), code=303)


def _session_editor(event: Event, session_id: int) -> Any:
    return redirect(url_for("agenda.manage_session", slug=event.slug, session_id=session_id), code=303)


def _failed(error: DomainError, target: Any) -> Any:
    db.session.rollback()
    flash(error.message, "error")
    return target


@bp.route("/manage/events/<slug>/agenda")
@event_permission_required(MANAGE)
def manage_agenda(event: Event) -> Any:
    releases = db.session.scalars(select(AgendaRelease).where(AgendaRelease.event_id == event.id)
                                  .order_by(AgendaRelease.sequence.desc())).all()
    form = SessionForm()
    form.set_choices(_tracks(event), _profiles(event))
    latest = releases[0] if releases else None
    return render_template(
        "agenda/manage.html", event=event, schedule=working_schedule(event), problems=agenda_problems(event),
        releases=[(release, json.loads(release.changes)) for release in releases],
        release_form=ReleaseForm(name=_suggest_name(latest)), session_form=form, action_form=ActionForm(),
        kinds=KIND_LABELS)


def _suggest_name(latest: AgendaRelease | None) -> str:
    return "1.0" if latest is None else f"{latest.sequence + 1}.0"


@bp.route("/manage/events/<slug>/agenda/sessions", methods=["POST"])
@event_permission_required(MANAGE)
def manage_create_session(event: Event) -> Any:
    form = SessionForm()
    form.set_choices(_tracks(event), _profiles(event))
    if not form.validate_on_submit():
        flash(_("Please check the form: %(errors)s", errors=_form_errors(form)), "error")
        return _editor(event)
    try:
        session = services.create_session(event, actor=current_user, **_session_values(event, form))
    except DomainError as error:
        return _failed(error, _editor(event))
    after_commit.commit()
    flash(_("The session has been created. Now give it a slot."), "success")
    return _session_editor(event, session.id)


def _form_errors(form: Any) -> str:
    return "; ".join(f"{getattr(form, name).label.text}: {', '.join(map(str, errors))}"
                     for name, errors in form.errors.items() if name != "speakers")


def _session_values(event: Event, form: SessionForm) -> dict[str, Any]:
    entries = [(parse_id(row.speaker.data), row.role.data) for row in form.speakers if row.speaker.data]
    track_id = parse_id(form.track_id.data) if form.track_id.data else None
    return {"title": form.title.data or "", "abstract": form.abstract.data or "", "kind": form.kind.data,
            "language": form.language.data, "track": track_in_event(event, track_id),
            "speakers": speakers_in_event(event, entries)}


@bp.route("/manage/events/<slug>/agenda/sessions/<int:session_id>", methods=["GET", "POST"])
@event_permission_required(MANAGE)
def manage_session(event: Event, session_id: int) -> Any:
    session = session_in_event(event, session_id)
    form = SessionForm(obj=session) if request.method == "GET" else SessionForm()
    if request.method == "GET":
        form.track_id.data = str(session.track_id or "")
        for row, link in zip(form.speakers, [*session.speakers, *[None] * SPEAKER_ROWS], strict=False):
            row.speaker.data = str(link.speaker_id) if link else ""
            row.role.data = link.role if link else "speaker"
    form.set_choices(_tracks(event), _profiles(event))
    status = 200
    if form.validate_on_submit():
        try:
            values = _session_values(event, form) | {"recording_url": form.recording_url.data}
            _flash_warnings(services.update_session(session, actor=current_user, **values))
        except DomainError as error:
            db.session.rollback()
            flash(error.message, "error")
            status = error.status
        else:
            after_commit.commit()
            flash(_("The session has been saved."), "success")
            return _session_editor(event, session.id)
    elif form.is_submitted():
        status = 400
    session = session_in_event(event, session_id)
    slot_form = SlotForm()
    slot_form.set_choices(_rooms(event), event.days())
    return render_template("agenda/manage_session.html", event=event, session=session, form=form,
                           slot_form=slot_form, rooms=_rooms(event), action_form=ActionForm(),
                           problems=[p for p in agenda_problems(event) if p.session_id == session.id]
                           ), status


def _slot_times(event: Event, form: SlotForm) -> tuple[Room, datetime, datetime]:
    room = room_in_event(event, parse_id(form.room_id.data))
    day = date.fromisoformat(form.day.data)
    start: time = form.start.data  # type: ignore[assignment]
    end: time = form.end.data  # type: ignore[assignment]
    return room, datetime.combine(day, start, event.zone), datetime.combine(day, end, event.zone)


def _submit(target: Any, act: Callable[[], object], done: str, *, form: Any = None,
            warnings: Sequence[Problem] = ()) -> Any:
    """Check `form` if there is one (its errors flashed), `act` (a refusal rolled back and flashed), commit, then
    flash the `warnings` that `act` collected and `done`. Every answer is `target`."""
    if form is not None and not form.validate_on_submit():
        flash(_("Please check the form: %(errors)s", errors=_form_errors(form)), "error")
        return target
    try:
        act()
    except DomainError as error:
        return _failed(error, target)
    after_commit.commit()
    _flash_warnings(list(warnings))
    flash(done, "success")
    return target


def _save_slot(event: Event, session_id: int, place: Callable[[Room, datetime, datetime], list[Problem]],
               done: str) -> Any:
    """The slot form of the session editor, for a new slot and a moved one."""
    form = SlotForm()
    form.set_choices(_rooms(event), event.days())
    warnings: list[Problem] = []
    return _submit(_session_editor(event, session_id), lambda: warnings.extend(place(*_slot_times(event, form))),
                   done, form=form, warnings=warnings)


@bp.route("/manage/events/<slug>/agenda/sessions/<int:session_id>/slots", methods=["POST"])
@event_permission_required(MANAGE)
def manage_add_slot(event: Event, session_id: int) -> Any:
    session = session_in_event(event, session_id)
    return _save_slot(event, session.id, lambda room, start, end: services.schedule_session(
        session, room=room, start_at=start, end_at=end, actor=current_user)[1], _("The slot has been added."))


@bp.route("/manage/events/<slug>/agenda/slots/<int:slot_id>", methods=["POST"])
@event_permission_required(MANAGE)
def manage_move_slot(event: Event, slot_id: int) -> Any:
    slot = slot_in_event(event, slot_id)
    return _save_slot(event, slot.session_id, lambda room, start, end: services.move_slot(
        slot, room=room, start_at=start, end_at=end, actor=current_user), _("The slot has been moved."))


@bp.route("/manage/events/<slug>/agenda/slots/<int:slot_id>/delete", methods=["POST"])
@event_permission_required(MANAGE)
def manage_delete_slot(event: Event, slot_id: int) -> Any:
    slot = slot_in_event(event, slot_id)
    session_id = slot.session_id
    services.delete_slot(slot, actor=current_user)
    after_commit.commit()
    flash(_("The slot has been removed."), "success")
    return _session_editor(event, session_id)


@bp.route("/manage/events/<slug>/agenda/sessions/<int:session_id>/<any(cancel, restore, 'copy-break'):action>",
          methods=["POST"])
@event_permission_required(MANAGE)
def manage_session_action(event: Event, session_id: int, action: str) -> Any:
    session = session_in_event(event, session_id)
    try:
        if action == "cancel":
            services.cancel_session(session, actor=current_user)
            message = _("The session is cancelled.")
        elif action == "restore":
            _flash_warnings(services.restore_session(session, actor=current_user))
            message = _("The session takes place again.")
        else:
            created = services.copy_break_to_all_rooms(session, actor=current_user)
            message = _("The break was copied to %(n)d more rooms.", n=len(created))
    except DomainError as error:
        return _failed(error, _session_editor(event, session_id))
    after_commit.commit()
    flash(message, "success")
    return _session_editor(event, session_id)


@bp.route("/manage/events/<slug>/agenda/sessions/<int:session_id>/delete", methods=["POST"])
@event_permission_required(MANAGE)
def manage_delete_session(event: Event, session_id: int) -> Any:
    session = session_in_event(event, session_id)
    title = session.title
    services.delete_session(session, actor=current_user)
    after_commit.commit()
    flash(_("»%(title)s« has been deleted.", title=title), "success")
    return _editor(event)


@bp.route("/manage/events/<slug>/agenda/releases", methods=["POST"])
@event_permission_required(MANAGE)
def manage_publish(event: Event) -> Any:
    form = ReleaseForm()
    if not form.validate_on_submit():
        flash(_("Please check the form: %(errors)s", errors=_form_errors(form)), "error")
        return _editor(event)
    try:
        release = publish_release(event, name=form.name.data, actor=current_user)
    except DomainError as error:
        return _failed(error, _editor(event))
    after_commit.commit()
    flash(_("Version %(name)s is published.", name=release.name), "success")
    return _editor(event)


# --- rooms and tracks ---------------------------------------------------------------------------


@bp.route("/manage/events/<slug>/agenda/rooms", methods=["GET", "POST"])
@event_permission_required(MANAGE)
def manage_rooms(event: Event) -> Any:
    room_form, track_form = RoomForm(prefix="room"), TrackForm(prefix="track")
    status = 200
    kind = request.form.get("form")
    try:
        if kind == "room" and room_form.validate_on_submit():
            create_room(event, name=room_form.name.data, stream_kind=room_form.stream_kind.data,
                        stream_url=room_form.stream_url.data, position=room_form.position.data,
                        actor=current_user)
            after_commit.commit()
            flash(_("The room has been added."), "success")
            return redirect(url_for("agenda.manage_rooms", slug=event.slug), code=303)
        if kind == "track" and track_form.validate_on_submit():
            create_track(event, name=track_form.name.data, color=track_form.color.data, actor=current_user)
            after_commit.commit()
            flash(_("The track has been added."), "success")
            return redirect(url_for("agenda.manage_rooms", slug=event.slug), code=303)
        if request.method == "POST":
            status = 400
    except DomainError as error:
        db.session.rollback()
        target = room_form if kind == "room" else track_form
        getattr(target, error.field or "name", target.name).errors.append(error.message)
        status = error.status
    rooms, tracks = _rooms(event), _tracks(event)
    edit_rooms = [(room, RoomForm(prefix=f"room{room.id}", obj=room)) for room in rooms]
    edit_tracks = [(track, TrackForm(prefix=f"track{track.id}", obj=track)) for track in tracks]
    return render_template("agenda/manage_rooms.html", event=event, room_form=room_form, track_form=track_form,
                           edit_rooms=edit_rooms, edit_tracks=edit_tracks, action_form=ActionForm()), status


def _save_or_delete(event: Event, make_form: Callable[[], Any], delete: Callable[[], object],
                    update: Callable[[Any], object], done: str) -> Any:
    """The own form of a room or a track on the rooms page: delete it, or check the form and save it."""
    target = redirect(url_for("agenda.manage_rooms", slug=event.slug), code=303)
    if request.form.get("action") == "delete":
        return _submit(target, delete, done)
    form = make_form()
    return _submit(target, lambda: update(form), done, form=form)


@bp.route("/manage/events/<slug>/agenda/rooms/<int:room_id>", methods=["POST"])
@event_permission_required(MANAGE)
def manage_room(event: Event, room_id: int) -> Any:
    room = room_in_event(event, room_id)
    return _save_or_delete(
        event, lambda: RoomForm(prefix=f"room{room.id}"), lambda: delete_room(room, actor=current_user),
        lambda form: update_room(room, name=form.name.data, stream_kind=form.stream_kind.data,
                                 stream_url=form.stream_url.data, position=form.position.data, actor=current_user),
        _("The rooms have been saved."))


@bp.route("/manage/events/<slug>/agenda/tracks/<int:track_id>", methods=["POST"])
@event_permission_required(MANAGE)
def manage_track(event: Event, track_id: int) -> Any:
    track = track_in_event(event, track_id)
    assert track is not None
    return _save_or_delete(
        event, lambda: TrackForm(prefix=f"track{track.id}"), lambda: delete_track(track, actor=current_user),
        lambda form: update_track(track, name=form.name.data, color=form.color.data, actor=current_user),
        _("The tracks have been saved."))
