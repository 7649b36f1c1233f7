"""Live pages: the event lobby, the moderators' page (reports, hidden questions, sanctions, slow mode,
announcements, retention policy), the chat history API, and the retention purge command."""

from __future__ import annotations

from typing import Any

import click
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from conference.agenda.models import ConferenceSession
from conference.agenda.public import released_sessions
from conference.auth.accounts import find_user_by_email
from conference.core import after_commit
from conference.core.errors import DomainError, NotFound, ValidationFailed
from conference.core.ids import parse_count, require_id
from conference.core.permissions import Permission, has_permission
from conference.core.signals import account_data, account_erasing, retention_purged
from conference.events.access import event_permission_required, load_event, require
from conference.events.models import Event
from conference.extensions import db
from conference.live import (
    access,
    account,
    announcements,
    chat,
    moderation,
    openapi,
    panels,
    payloads,
    qa,
    reports,
    retention,
    rooms,
)
from conference.live.models import ChatReport, LiveSanction, Question

bp = Blueprint("live", __name__, cli_group="live")
bp.record_once(lambda _state: panels.register())  # changed questions drop the cached session page panels
bp.record_once(lambda state: openapi.register(state.app))  # type: ignore[arg-type]


@bp.record_once
def _setup(_state: Any) -> None:
    account_data.connect(account.account_data)
    account_erasing.connect(account.erase_account)
    retention_purged.connect(retention.on_retention_purged)


@bp.route("/events/<slug>/lobby")
@event_permission_required(Permission.JOIN_LIVE)
def lobby(event: Event) -> Any:
    return render_template("live/lobby.html", event=event, room=rooms.room_for(event),
                           announcements=announcements.recent_announcements(event, limit=3))


@bp.route("/api/v1/events/<slug>/chat")
def api_history(slug: str) -> Any:
    """Chat history for bots and exports: `?room=...&after_id=...` (the same payloads as the socket)."""
    event = load_event(slug)
    require(event, Permission.JOIN_LIVE)
    room = rooms.load_room_info(request.args.get("room"))
    if room.event_id != event.id:
        raise NotFound(_("There is no such room."), code="unknown_room", field="room")
    standing = _standing(event)
    rooms.require_released_room(room, may_manage_agenda=standing.may(Permission.MANAGE_AGENDA))
    access.require_join(standing)
    after_id = require_id(request.args["after_id"], field="after_id", minimum=0, text=True) \
        if "after_id" in request.args else None
    messages = chat.history(room, after_id=after_id)
    return jsonify({"ok": True, "room": room.name, "messages": [payloads.message_payload(m) for m in messages]})


def _standing(event: Event) -> access.Standing:
    """The signed-in person's standing in the event: the cached snapshot the socket handlers use too."""
    standing = access.cached_standing(current_user.id, event.id)
    if standing is None:
        abort(403)
    return standing


# --- moderation page -------------------------------------------------------------------------------------

def _back(event: Event) -> Any:
    return redirect(url_for("live.manage", slug=event.slug), code=303)


def _chat_rooms(event: Event) -> list[tuple[str, str]]:
    """The lobby and the rooms of the released sessions (moderators need not manage the agenda: no drafts)."""
    sessions = sorted(released_sessions(event), key=lambda entry: entry.title)
    return [(rooms.room_for(event), _("Lobby"))] + [(entry.chat_room, entry.title) for entry in sessions]


@bp.route("/manage/events/<slug>/live")
@event_permission_required(Permission.MODERATE)
def manage(event: Event) -> Any:
    return _manage_page(event)


def _manage_page(event: Event, status: int = 200) -> Any:
    return render_template(
        "live/manage.html", event=event, reports=reports.open_reports(event),
        hidden_questions=qa.hidden_questions(event), sanctions=moderation.active_sanctions(event),
        rooms=_chat_rooms(event),
        announcements=announcements.recent_announcements(event),
        can_announce=has_permission(current_user, event, Permission.SEND_ANNOUNCEMENT),
        can_manage=has_permission(current_user, event, Permission.MANAGE_EVENT)), status


def _report(event: Event, report_id: int) -> ChatReport:
    report = db.session.get(ChatReport, report_id)
    if report is None or report.event_id != event.id:
        abort(404)
    return report


def _run(event: Event, action: Any, success: str, back: str | None = None) -> Any:
    """One service call, then commit and back to the page (or to `back`); a refusal is shown with its 4xx on the
    moderation page and changes nothing."""
    try:
        action()
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return _manage_page(event, error.status)
    after_commit.commit()
    flash(success, "success")
    return redirect(back, code=303) if back else _back(event)


@bp.route("/manage/events/<slug>/live/reports/<int:report_id>/delete", methods=["POST"])
@event_permission_required(Permission.MODERATE)
def delete_reported(event: Event, report_id: int) -> Any:
    report = _report(event, report_id)
    done = _("The message has been deleted.") if report.message is not None else _("The question is hidden.")
    return _run(event, lambda: moderation.remove_reported(report, actor=_standing(event)), done)


@bp.route("/manage/events/<slug>/live/reports/<int:report_id>/dismiss", methods=["POST"])
@event_permission_required(Permission.MODERATE)
def dismiss_report(event: Event, report_id: int) -> Any:
    report = _report(event, report_id)
    return _run(event, lambda: reports.dismiss_report(report, actor=_standing(event)), _("The report is dismissed."))


def _question_back(event: Event, question: Question) -> str | None:
    """Forms on the session page send `back=session` to return there; anything else returns to this page."""
    if request.form.get("back") != "session":
        return None
    return url_for("agenda.session_page", slug=event.slug, session_id=question.session_id)


@bp.route("/manage/events/<slug>/live/questions/<int:question_id>/hide", methods=["POST"])
@event_permission_required(Permission.MODERATE)
def hide_question(event: Event, question_id: int) -> Any:
    question = qa.question_in_event(event, question_id)
    return _run(event, lambda: qa.hide_question(question, actor=_standing(event)), _("The question is hidden."),
                _question_back(event, question))


@bp.route("/manage/events/<slug>/live/questions/<int:question_id>/restore", methods=["POST"])
@event_permission_required(Permission.MODERATE)
def restore_question(event: Event, question_id: int) -> Any:
    question = qa.question_in_event(event, question_id)
    return _run(event, lambda: qa.restore_question(question, actor=_standing(event)),
                _("The question is shown again."), _question_back(event, question))


@bp.route("/manage/events/<slug>/live/sanctions", methods=["POST"])
@event_permission_required(Permission.MODERATE)
def add_sanction(event: Event) -> Any:
    def action() -> None:
        user = find_user_by_email(request.form.get("email", "")[:254])
        target = access.load_standing(user.id, event.id) if user is not None else None
        if target is None:
            raise NotFound(_("No account with this e-mail address."), field="email")
        minutes_text = request.form.get("minutes", "").strip()
        minutes = parse_count(minutes_text) if minutes_text else None
        if minutes_text and minutes is None:
            raise ValidationFailed(_("The duration must be a whole number of minutes."), field="minutes")
        moderation.sanction_user(target, kind=request.form.get("kind", ""), minutes=minutes,
                                 actor=_standing(event))

    return _run(event, action, _("Saved."))


@bp.route("/manage/events/<slug>/live/sanctions/<int:sanction_id>/lift", methods=["POST"])
@event_permission_required(Permission.MODERATE)
def lift_sanction(event: Event, sanction_id: int) -> Any:
    sanction = db.session.get(LiveSanction, sanction_id)
    if sanction is None or sanction.event_id != event.id:
        abort(404)
    return _run(event, lambda: moderation.lift_sanction(sanction, actor=_standing(event)), _("Lifted."))


@bp.route("/manage/events/<slug>/live/slow-mode", methods=["POST"])
@event_permission_required(Permission.MODERATE)
def slow_mode(event: Event) -> Any:
    def action() -> None:
        room = rooms.load_room_info(request.form.get("room", ""))
        if room.event_id != event.id:
            raise NotFound(_("There is no such room."), field="room")
        seconds = parse_count(request.form.get("seconds", "").strip())
        if seconds is None:
            raise ValidationFailed(_("Slow mode needs a whole number of seconds."), field="seconds")
        moderation.set_slow_mode(room, seconds=seconds, actor=_standing(event))

    return _run(event, action, _("Slow mode saved."))


@bp.route("/manage/events/<slug>/live/announcements", methods=["POST"])
@event_permission_required(Permission.SEND_ANNOUNCEMENT)
def announce(event: Event) -> Any:
    def action() -> None:
        announcements.announce(rooms.load_room_info(f"event:{event.slug}"), text=request.form.get("text", ""),
                               actor=_standing(event))

    return _run(event, action, _("The announcement has been sent."))


@bp.route("/manage/events/<slug>/live/retention", methods=["POST"], endpoint="retention")
@event_permission_required(Permission.MANAGE_EVENT)
def retention_settings(event: Event) -> Any:
    """The event's retention policy: a field per kind of record; a field not sent stays as it was."""
    def action() -> None:
        periods: dict[str, int | None] = {}
        for kind in retention.KINDS:
            if kind.column not in request.form:
                continue
            text = request.form.get(kind.column, "").strip()
            days = parse_count(text) if text else None
            if text and days is None:
                raise ValidationFailed(_("Days must be a whole number."), field=kind.column)
            periods[kind.column] = days
        retention.set_retention(event, periods=periods, actor=current_user)

    return _run(event, action, _("Retention periods saved."))


@bp.app_context_processor
def live_template_helpers() -> dict[str, Any]:
    return {"live_session_context": session_context, "retention_policy": retention_policy}


def retention_policy(event: Event) -> list[tuple[retention.RetentionKind, int | None, Any]]:
    """The event's periods for its privacy page and the settings form: (kind, days, deletion date)."""
    return [(kind, days, retention.delete_on(event, days)) for kind, days in retention.policy(event)]


def session_context(event: Event, session: ConferenceSession) -> dict[str, Any]:
    """What the session page's live partial shows: chat panel or archive, and the questions (hidden ones only
    for moderators, who get hide and restore buttons there)."""
    room = rooms.LiveRoom(rooms.room_for(session), "session", event, session)
    member = current_user.is_authenticated and has_permission(current_user, event, Permission.JOIN_LIVE)
    moderator = has_permission(current_user, event, Permission.MODERATE)
    closed = rooms.chat_is_closed(room)
    return {
        "room": room.name,
        "can_take_part": bool(member),
        "can_moderate": moderator,
        "is_closed": closed,
        "archive": chat.history(room, limit=500) if member and closed else [],
        "questions": qa.questions_for(session.id, include_hidden=moderator),
    }


@bp.cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what is due without deleting it.")
def purge_command(dry_run: bool) -> None:
    """Delete what each event's retention policy says is due: chat, questions and answers, votes, reports and
    sanctions, mail logs, presence minutes (run daily: deploy/conference-retention.timer)."""
    report = retention.purge_expired()
    if dry_run:
        db.session.rollback()
        after_commit.discard_deferred()
    else:
        after_commit.commit()
    counts = ", ".join(f"{report.deleted[kind.key]} {COUNTED[kind.key]}" for kind in retention.KINDS)
    click.echo(f"{'Would delete' if dry_run else 'Deleted'} {counts} (events due: {len(report.events)}).")


COUNTED = {"chat": "chat messages", "questions": "questions (with their answers and votes)", "votes": "votes",
           "reports": "reports and sanctions", "mail_log": "mail log entries", "attendance": "presence minutes",
           "feedback": "session ratings and comments"}


@bp.cli.command("purge-chat", hidden=True)
@click.pass_context
def purge_chat_command(context: click.Context) -> None:
    """The former name of `conference live purge` (it now applies the whole retention policy)."""
    context.invoke(purge_command, dry_run=False)
