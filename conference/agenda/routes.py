"""Agenda pages: the public programme, session pages, exports and the personal agenda.

The organiser editor (`manage`) and the JSON API (`api`) register their views on the same blueprint.
"""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import qrcode
import qrcode.image.svg
from babel.dates import format_date
from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from conference.agenda import api, fields, import_routes, lookups, manage, pagecache, personal  # noqa: F401  (their views register on `bp`)
from conference.agenda.blueprint import bp, published_or_404
from conference.agenda.exports import attachments_by_session, schedule_ics, schedule_json, schedule_xml
from conference.agenda.forms import KIND_LABELS, LANGUAGE_LABELS, ActionForm
from conference.agenda.grid import day_grid, default_day, now_and_next, parse_filters
from conference.agenda.models import Track
from conference.agenda.players import hls_origins
from conference.agenda.schedule import Schedule, published_schedule
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import wants_json
from conference.core.http_cache import cacheable
from conference.core.permissions import Permission
from conference.core.security import is_safe_redirect, policy_with_connect_origins
from conference.core.signals import account_data, account_erasing
from conference.events.access import load_event, may_see_links, require
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile

__all__ = ["bp"]


def _session_url(event: Event) -> Any:
    return lambda session_id: url_for("agenda.session_page", slug=event.slug, session_id=session_id,
                                      _external=True)


def _speaker_url(event: Event) -> Any:
    if "speakers.speaker_page" not in current_app.view_functions:
        return None
    return lambda speaker_id: url_for("speakers.speaker_page", slug=event.slug, speaker_id=speaker_id,
                                      _external=True)



@bp.record_once
def _setup(_state: Any) -> None:
    account_data.connect(personal.account_data)
    account_erasing.connect(personal.erase_account)

@bp.route("/events/<slug>/agenda")
def schedule(slug: str) -> Any:
    event = load_event(slug)
    cacheable(shared=False)  # the language switch holds the visitor's CSRF token
    published = published_schedule(event)
    if published is None:
        return render_template("agenda/schedule.html", event=event, schedule=None, days=[], day=None, rows=[],
                               filters=parse_filters(request.args), starred=set(), action_form=None,
                               kinds=KIND_LABELS, languages=LANGUAGE_LABELS)
    days = published.days()
    requested = request.args.get("day", "")
    try:
        day = date.fromisoformat(requested) if requested else None
    except ValueError:
        day = None
    if day not in days:
        day = default_day(published, utcnow().astimezone(event.zone).date())
    filters = parse_filters(request.args)

    def render(**extra: Any) -> str:
        rows = day_grid(published, day, filters) if day else []
        grid_html = _grid_html(event, published, day, filters, rows) if rows else ""
        return render_template("agenda/schedule.html", event=event, schedule=published, days=days, day=day,
                               rows=rows, grid_html=grid_html,
                               day_label=format_date(day, "full", locale=get_locale() or "de") if day else None,
                               filters=filters, kinds=KIND_LABELS, languages=LANGUAGE_LABELS, **extra)

    if not pagecache.is_shared_view():
        return render()
    key = pagecache.release_key(event, published, "grid", day, filters, request.full_path)
    return pagecache.personalise(pagecache.cached(key, lambda: pagecache.render_shared(render)))


def _grid_html(event: Event, published: Schedule, day: date | None, filters: Any, rows: list[Any]) -> Markup:
    """The grid as HTML. For anonymous visitors it depends only on the release, the event, day, filters,
    language and site address, so it is rendered once and reused (logged-in people get their own stars)."""
    signed_in = current_user.is_authenticated
    context = {"event": event, "schedule": published, "rows": rows, "kinds": KIND_LABELS,
               "starred": personal.starred_session_ids(event, current_user) if signed_in else set(),
               "action_form": ActionForm() if signed_in else None}
    if signed_in:
        return Markup(render_template("agenda/_grid.html", **context))  # noqa: S704 - rendered by Jinja
    key = pagecache.release_key(event, published, "grid-html", day, filters)
    return pagecache.cached(key, lambda: Markup(  # noqa: S704 - rendered by Jinja
        render_template("agenda/_grid.html", **context)))


@bp.route("/events/<slug>/agenda/tracks.css")
def track_styles(slug: str) -> Any:
    """Track colours as a style sheet (the CSP allows no inline styles): the released tracks, or with
    `?state=working` the editor's (organisers only)."""
    event = load_event(slug)
    if request.args.get("state") == "working":
        require(event, Permission.MANAGE_AGENDA)
        tracks: Any = db.session.scalars(select(Track).where(Track.event_id == event.id)).all()
        cache_control = "private, no-store"
    else:
        published = published_schedule(event)
        tracks = published.tracks if published is not None else []
        cache_control = "no-cache"
    css = "".join(f".track-{t.id}{{--track-color:{t.color}}}\n" for t in tracks
                  if fields.COLOR_PATTERN.match(t.color))
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = cache_control
    # The public sheet is asked for again on every page (a changed colour shows at once): 304 while the same.
    response.add_etag()
    return response.make_conditional(request)


@bp.route("/events/<slug>/agenda/now")
def now_next(slug: str) -> Any:
    event = load_event(slug)
    cacheable(shared=False)
    published = published_schedule(event)
    now = utcnow()
    rows = now_and_next(published, now) if published else []
    return render_template("agenda/now.html", event=event, schedule=published, rows=rows, now=now)


@bp.route("/events/<slug>/sessions/<int:session_id>")
def session_page(slug: str, session_id: int) -> Any:
    event = load_event(slug)
    published = published_or_404(event)
    entry = published.session(session_id)
    session = lookups.session_in_event(event, session_id) if entry is not None else None
    if entry is None or session is None:
        abort(404)
    cacheable(shared=False)
    starred = session_id in personal.starred_session_ids(event, current_user)
    context = {"event": event, "session": session, "entry": entry, "schedule": published, "is_starred": starred,
               "kinds": KIND_LABELS, "action_form": ActionForm() if current_user.is_authenticated else None,
               "show_links": may_see_links(current_user, event), "on_stage": entry.is_on_stage(utcnow()),
               "has_ended": entry.has_ended(utcnow()),
               "photo_ids": _speakers_with_photo(event, [p.id for p in entry.speakers])}
    response = make_response(_session_html(event, published, session_id, context))
    if context["show_links"]:
        response.headers["Content-Security-Policy"] = policy_with_connect_origins(hls_origins(entry.rooms))
    return response


def _speakers_with_photo(event: Event, speaker_ids: list[int]) -> frozenset[int]:
    """Photos change between releases; the page asks the profiles (one query), and the cache key holds them."""
    if not speaker_ids:
        return frozenset()
    return frozenset(db.session.scalars(select(SpeakerProfile.id).where(
        SpeakerProfile.event_id == event.id, SpeakerProfile.id.in_(speaker_ids),
        SpeakerProfile.photo_filename.is_not(None))))


def _session_html(event: Event, published: Schedule, session_id: int, context: dict[str, Any]) -> str:
    if not pagecache.is_shared_view():
        return render_template("agenda/session.html", **context)
    # The page depends only on the release; the slides and live panels change between releases and are kept
    # for a few seconds only (their domains drop them at once after a change: pagecache.forget_panels).
    key = pagecache.release_key(event, published, "session", session_id, request.full_path, context["on_stage"],
                                context["has_ended"],
                                context["photo_ids"])
    page = pagecache.cached(key, lambda: pagecache.render_shared(lambda **extra: render_template(
        "agenda/session.html", panels_html=Markup(pagecache.PANELS_PLACEHOLDER),  # noqa: S704 - a constant
        **context, **extra)))
    panels = pagecache.session_panels(event, session_id, lambda: pagecache.render_shared(
        lambda **extra: render_template("agenda/_session_panels.html", **context, **extra)))
    return pagecache.personalise(page.replace(pagecache.PANELS_PLACEHOLDER, panels, 1))


# --- exports ------------------------------------------------------------------------------------


def _export_response(body: bytes | str, mimetype: str, version: str | None) -> Response:
    cacheable(shared=True)  # the personal feed sets its own private, no-store
    response = Response(body, mimetype=mimetype)
    response.headers["X-Schedule-Version"] = version or ""
    return response


@bp.route("/events/<slug>/schedule.xml")
def export_xml(slug: str) -> Any:
    event = load_event(slug)
    published = published_or_404(event)
    attachments = attachments_by_session(event)  # not part of the release: part of the key
    key = pagecache.release_key(event, published, "xml", request.base_url, pagecache.stamp(attachments))
    body = pagecache.cached(key, lambda: schedule_xml(
        event, published, self_url=request.base_url, base_url=url_for("events.event_page", slug=event.slug,
                                                                      _external=True),
        session_url=_session_url(event), speaker_url=_speaker_url(event), attachments=attachments))
    return _export_response(body, "application/xml", published.version)


@bp.route("/events/<slug>/schedule.json")
def export_json(slug: str) -> Any:
    event = load_event(slug)
    published = published_or_404(event)
    attachments = attachments_by_session(event)  # not part of the release: part of the key
    key = pagecache.release_key(event, published, "json", pagecache.stamp(attachments))
    body = pagecache.cached(key, lambda: json.dumps(schedule_json(
        event, published, base_url=url_for("events.event_page", slug=event.slug, _external=True),
        session_url=_session_url(event), speaker_url=_speaker_url(event), attachments=attachments),
        ensure_ascii=False))
    return _export_response(body, "application/json", published.version)


@bp.route("/events/<slug>/schedule.ics")
def export_ics(slug: str) -> Any:
    event = load_event(slug)
    published = published_or_404(event)
    body = pagecache.cached(pagecache.release_key(event, published, "ics"), lambda: schedule_ics(
        event, published, published.sessions, name=event.title, session_url=_session_url(event),
        stamp=published.published_at or utcnow()))
    return _export_response(body, "text/calendar", published.version)


# --- personal agenda ----------------------------------------------------------------------------


def _back(event: Event, session_id: int) -> Any:
    target = request.form.get("next")
    if target and is_safe_redirect(target):
        return redirect(target, code=303)
    return redirect(url_for("agenda.session_page", slug=event.slug, session_id=session_id), code=303)


@bp.route("/events/<slug>/sessions/<int:session_id>/star", methods=["POST"])
@login_required
def star(slug: str, session_id: int) -> Any:
    event = load_event(slug)
    session = lookups.released_session_in_event(event, session_id)
    if request.form.get("action") == "unstar":
        personal.unstar_session(session, user=current_user)
        message = _("Removed from your agenda.")
    else:
        personal.star_session(session, user=current_user)
        message = _("Added to your agenda.")
    after_commit.commit()
    if wants_json():  # agenda.js stars in place: no reload, no jump to the top of a long agenda
        return jsonify({"ok": True, "starred": request.form.get("action") != "unstar", "message": message})
    flash(message, "success")
    return _back(event, session_id)


@bp.route("/events/<slug>/my-agenda")
@login_required
def my_agenda(slug: str) -> Any:
    event = load_event(slug)
    published = published_schedule(event)
    starred = personal.starred_session_ids(event, current_user)
    entries = [s for s in published.sessions if s.id in starred] if published else []
    feed = personal.active_calendar_feed(event, current_user)
    feed_url = url_for("agenda.calendar_feed", slug=event.slug, token=personal.calendar_feed_token(feed),
                       _external=True) if feed else None
    from conference.mails.models import DEFAULT_REMINDER_MINUTES  # a layer above: only for the page
    from conference.mails.services import REMINDER_CHOICES, preference_of

    return render_template("agenda/my_agenda.html", event=event, schedule=published, entries=entries,
                           feed_url=feed_url, action_form=ActionForm(), kinds=KIND_LABELS,
                           mail_preference=preference_of(event, current_user), reminder_choices=REMINDER_CHOICES,
                           default_reminder=DEFAULT_REMINDER_MINUTES)


@bp.route("/events/<slug>/my-agenda/feed", methods=["POST"])
@login_required
def create_feed(slug: str) -> Any:
    event = load_event(slug)
    personal.create_calendar_feed(event, user=current_user)
    return _feed_changed(event, _("Your calendar address is ready. Any previous address no longer works."),
                         "success")


@bp.route("/events/<slug>/my-agenda/feed/revoke", methods=["POST"])
@login_required
def revoke_feed(slug: str) -> Any:
    event = load_event(slug)
    personal.revoke_calendar_feed(event, user=current_user)
    return _feed_changed(event, _("Your calendar address has been switched off."), "info")


def _feed_changed(event: Event, message: str, category: str) -> Any:
    """After the calendar address was made or switched off: commit, say so, back to the personal agenda."""
    after_commit.commit()
    flash(message, category)
    return redirect(url_for("agenda.my_agenda", slug=event.slug), code=303)


@bp.route("/events/<slug>/my-agenda/feed.svg")
@login_required
def feed_qr(slug: str) -> Any:
    event = load_event(slug)
    feed = personal.active_calendar_feed(event, current_user)
    if feed is None:
        abort(404)
    url = url_for("agenda.calendar_feed", slug=event.slug, token=personal.calendar_feed_token(feed),
                  _external=True)
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return Response(buffer.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


@bp.route("/events/<slug>/calendar/<token>.ics")
def calendar_feed(slug: str, token: str) -> Any:
    """The secret personal feed: no login (calendar apps cannot log in); the token is the credential."""
    event = load_event(slug)
    feed = personal.calendar_feed_for_token(event, token)
    if feed is None:
        abort(404)
    published = published_schedule(event)
    starred = personal.starred_session_ids(event, feed.user)
    entries = [s for s in published.sessions if s.id in starred] if published else []
    stamp = published.published_at if published and published.published_at else utcnow()
    body = schedule_ics(event, published or _empty(event), entries,
                        name=_("%(title)s: my agenda", title=event.title), session_url=_session_url(event),
                        stamp=stamp)
    response = _export_response(body, "text/calendar", published.version if published else None)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _empty(event: Event) -> Schedule:
    return Schedule(event.slug, event.timezone, None, None, [], [], [])
