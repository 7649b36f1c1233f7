"""Mails attendees get. Services flush, never commit; every mail is queued in the caller's transaction.

Everything a mail says about the programme comes from the latest release (`published_schedule`), never from the
organisers' working rows, so a draft title or a move not yet released never reaches an inbox.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from conference.agenda.models import StarredSession
from conference.agenda.personal import active_calendar_feed, calendar_feed_token, create_calendar_feed
from conference.agenda.schedule import PSession, published_schedule
from conference.auth.models import User
from conference.core import jobs
from conference.core.db import utcnow
from conference.core.errors import NotAllowed, RateLimited, ValidationFailed
from conference.core.mail import external_url, mail_locale, send_mail
from conference.core.permissions import Permission, has_permission
from conference.core.rendering import format_day
from conference.core.text import has_forbidden_text
from conference.core.timeutil import to_zone
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.mails.models import (
    DEFAULT_REMINDER_MINUTES,
    AnnouncementMail,
    MailPreference,
    SentReminder,
    SlidesNotice,
)
from conference.settings import get_settings

log = logging.getLogger("conference.mails")

REMINDER_CHOICES = (5, 10, 15, 30, 60)
SUBJECT_MAX = 200
BODY_MAX = 20_000
ANNOUNCEMENT_JOB = "mail.announcement"
ANNOUNCEMENT_BATCH = 50  # recipients per transaction: ~40 ms of the event loop each (bench: 0.7 ms a mail)


def _when(value: datetime, event: Event) -> str:
    """A released time in the event's zone, in the language in force (24-hour clock in both, as on the site)."""
    local = to_zone(value, event.timezone)
    return f"{format_day(local.date())} {local:%H:%M}"


# --- preferences ---------------------------------------------------------------------------------------------


def preference_of(event: Event, user: User) -> MailPreference | None:
    return db.session.scalar(select(MailPreference).where(MailPreference.event_id == event.id,
                                                          MailPreference.user_id == user.id))


def set_preferences(event: Event, *, user: User, reminder_minutes: int | None,
                    wants_slides_notice: bool) -> MailPreference:
    """Save one person's opt-ins for the event. `reminder_minutes` None switches reminders off. Flushes."""
    if reminder_minutes is not None and reminder_minutes not in REMINDER_CHOICES:
        raise ValidationFailed(_("Choose one of the offered reminder times."), field="reminder_minutes")
    preference = preference_of(event, user)
    if preference is None:
        preference = MailPreference(event_id=event.id, user_id=user.id)
        db.session.add(preference)
    preference.reminder_minutes = reminder_minutes
    preference.wants_slides_notice = wants_slides_notice
    preference.updated_at = utcnow()
    db.session.flush()
    return preference


# --- registration confirmation -------------------------------------------------------------------------------


def confirm_registration(sender: Any, *, event_id: int, user_id: int, **kwargs: Any) -> None:
    """Receiver of `attendee_registered`: queue the confirmation in the registration's unit of work, with the
    agenda and the person's calendar feed (made now if they have none), in their language.

    Not for an unverified address: anybody can type someone else's address into the registration form, and
    that address should not receive mail about events it never chose (the verification mail is the only one).
    """
    event = db.session.get(Event, event_id)
    user = db.session.get(User, user_id)
    if event is None or user is None or not user.is_verified or user.is_disabled:
        return
    feed = active_calendar_feed(event, user) or create_calendar_feed(event, user=user)
    feed_link = external_url("agenda.calendar_feed", slug=event.slug,
                             token=calendar_feed_token(feed))
    agenda_link = external_url("agenda.schedule", slug=event.slug)
    with mail_locale(user, event):
        dates = format_day(event.start_date) if event.start_date == event.end_date else \
            f"{format_day(event.start_date)} – {format_day(event.end_date)}"
        body = _(
            "Hello %(name)s,\n\nyou are registered for %(event)s (%(dates)s).\n\nThe agenda:\n%(agenda)s\n\n"
            "Your personal calendar address (your starred sessions, always in the latest version of the agenda; "
            "keep it to yourself):\n%(feed)s\n\nSee you there!\n%(event)s",
            name=user.name, event=event.title, dates=dates, agenda=agenda_link, feed=feed_link)
        send_mail(to=user.email, to_name=user.name, event_id=event.id, body=body,
                  subject=_("You are registered for %(event)s", event=event.title))


# --- the background pass ---------------------------------------------------------------------------------------


@dataclass
class PassReport:
    reminders: int = 0
    slides_notices: int = 0


def send_due_mails(now: datetime | None = None) -> PassReport:
    """Queue every reminder and slides notice that is due at `now`. Flushes; the caller commits.

    Several workers may run this at once: each mail is preceded by its marker row, inserted in a savepoint, and
    the unique constraint lets only one of them through.
    """
    now = now or utcnow()
    report = PassReport()
    event_ids = db.session.scalars(select(MailPreference.event_id).where(
        (MailPreference.reminder_minutes.is_not(None)) | MailPreference.wants_slides_notice).distinct()).all()
    for event_id in event_ids:
        event = db.session.get(Event, event_id)
        if event is None:
            continue
        report.reminders += _send_reminders(event, now)
        report.slides_notices += _send_slides_notices(event, now)
    return report


def _claim(marker: Any) -> bool:
    """Insert a marker row; False when another pass (another worker) holds it already."""
    try:
        with db.session.begin_nested():
            db.session.add(marker)
        return True
    except IntegrityError:
        return False


def _starrers(event: Event, *, extra: Any) -> list[tuple[User, MailPreference, int]]:
    """(user, preference, session id) of the starred sessions of people in the event who opted in."""
    rows = db.session.execute(
        select(User, MailPreference, StarredSession.session_id)
        .join(MailPreference, MailPreference.user_id == User.id)
        .join(StarredSession, StarredSession.user_id == User.id)
        .join(EventMembership, (EventMembership.user_id == User.id) & (EventMembership.event_id == event.id))
        .where(MailPreference.event_id == event.id, extra, User.is_disabled.is_(False), User.deleted_at.is_(None))
        .order_by(User.id, StarredSession.session_id)).all()
    return [(user, preference, session_id) for user, preference, session_id in rows]


def _send_reminders(event: Event, now: datetime) -> int:
    schedule = published_schedule(event)
    if schedule is None:
        return 0
    count = 0
    for user, preference, session_id in _starrers(event, extra=MailPreference.reminder_minutes.is_not(None)):
        entry = schedule.session(session_id)
        if entry is None or entry.cancelled or entry.start_at is None:
            continue
        lead = timedelta(minutes=preference.reminder_minutes or DEFAULT_REMINDER_MINUTES)
        # Due from `lead` before the released start until it starts; after a pause of the pass, a session that
        # has begun gets no late reminder.
        if not entry.start_at - lead <= now < entry.start_at:
            continue
        # The marker is the only record of "already reminded": a second pass, here or in another worker, fails
        # on its unique constraint and skips.
        if not _claim(SentReminder(user_id=user.id, session_id=session_id, start_at=entry.start_at)):
            continue
        _queue_reminder(event, user, entry, entry.start_at)
        count += 1
    return count


def _queue_reminder(event: Event, user: User, entry: PSession, start_at: datetime) -> None:
    link = external_url("agenda.session_page", slug=event.slug, session_id=entry.id)
    rooms = ", ".join(dict.fromkeys(slot.room.name for slot in entry.slots))
    with mail_locale(user, event):
        body = _(
            "Hello %(name)s,\n\n\"%(title)s\" begins at %(time)s (%(room)s), %(event)s.\n\n%(link)s\n\n"
            "You receive this reminder because the session is in your agenda and you asked for reminders. You can "
            "switch them off on your agenda page:\n%(settings)s",
            name=user.name, title=entry.title, time=_when(start_at, event), room=rooms,
            event=event.title, link=link, settings=external_url("agenda.my_agenda", slug=event.slug))
        send_mail(to=user.email, to_name=user.name, event_id=event.id, body=body,
                  subject=_("Soon: %(title)s", title=entry.title))


def _send_slides_notices(event: Event, now: datetime) -> int:
    from conference.presentations.services import published_presentations

    schedule = published_schedule(event)
    if schedule is None:
        return 0
    published = {p.session_id for p in published_presentations(event, now)}
    noticed = set(db.session.scalars(select(SlidesNotice.session_id).where(SlidesNotice.session_id.in_(published))))
    due = published - noticed
    if not due:
        return 0
    recipients: dict[int, list[User]] = {}
    for user, _preference, session_id in _starrers(event, extra=MailPreference.wants_slides_notice.is_(True)):
        if session_id in due:
            recipients.setdefault(session_id, []).append(user)
    count = 0
    for session_id in sorted(due):
        entry = schedule.session(session_id)
        if entry is None:
            continue
        people = recipients.get(session_id, [])
        if not _claim(SlidesNotice(session_id=session_id, recipients=len(people))):
            continue
        link = external_url("agenda.session_page", slug=event.slug, session_id=session_id)
        for user in people:
            with mail_locale(user, event):
                body = _(
                    "Hello %(name)s,\n\nthe slides of \"%(title)s\" (%(event)s) are now available:\n\n%(link)s\n\n"
                    "You receive this mail because the session is in your agenda and you asked to be told about "
                    "slides. You can switch this off on your agenda page:\n%(settings)s",
                    name=user.name, title=entry.title, event=event.title, link=link,
                    settings=external_url("agenda.my_agenda", slug=event.slug))
                send_mail(to=user.email, to_name=user.name, event_id=event.id, body=body,
                          subject=_("Slides available: %(title)s", title=entry.title))
            count += 1
    return count


def run_pass(app: Any, now: datetime | None = None) -> PassReport:
    """One pass in its own app context and transaction (the background task and the CLI)."""
    from conference.core.passes import run_in_transaction

    return run_in_transaction(app, lambda: send_due_mails(now))


def start_reminder_pass(app: Any, start_background_task: Callable[..., Any], sleep: Callable[[float], Any]) -> None:
    """Run `run_pass` every MAIL_REMINDER_INTERVAL seconds in the background of this process (0: never)."""
    from conference.core.passes import repeat_every

    repeat_every(get_settings(app).mail_reminder_interval, lambda: run_pass(app), name="reminder",
                 start_background_task=start_background_task, sleep=sleep)


# --- organisers' announcements -----------------------------------------------------------------------------------


def check_announcement(*, subject: str, body: str) -> tuple[str, str]:
    subject, body = subject.strip(), body.strip()
    if not subject or len(subject) > SUBJECT_MAX:
        raise ValidationFailed(_("The subject must have 1 to %(n)d characters.", n=SUBJECT_MAX), field="subject")
    if not body or len(body) > BODY_MAX:
        raise ValidationFailed(_("The text must have 1 to %(n)d characters.", n=BODY_MAX), field="body")
    if has_forbidden_text(subject) or has_forbidden_text(body):
        raise ValidationFailed(_("The text contains characters that are not allowed."), field="body")
    return subject, body


def _recipients_query(event: Event) -> Any:
    """Everyone registered for the event with a verified address and an active account, once each, by id."""
    return (select(User).join(EventMembership, EventMembership.user_id == User.id)
            .where(EventMembership.event_id == event.id, User.is_disabled.is_(False), User.deleted_at.is_(None),
                   User.email_verified_at.is_not(None)).order_by(User.id))


def announcement_recipient_count(event: Event) -> int:
    return int(db.session.scalar(select(func.count()).select_from(_recipients_query(event).subquery())) or 0)


def send_test_announcement(event: Event, *, subject: str, body: str, actor: User) -> None:
    """Queue the announcement to the organiser alone, as the recipients will get it (with the unsubscribe
    footer). Flushes."""
    if not has_permission(actor, event, Permission.SEND_ANNOUNCEMENT):
        raise NotAllowed(_("Only organisers may send announcements."))
    subject, body = check_announcement(subject=subject, body=body)
    with mail_locale(actor, event):
        queued = send_mail(to=actor.email, to_name=actor.name, event_id=event.id, bulk=True,
                           subject=_("[Test] %(subject)s", subject=subject), body=body)
    if queued is None:
        raise ValidationFailed(_("You unsubscribed from this event's announcements, so the test mail cannot "
                                 "reach you."), code="opted_out")


def send_announcement(event: Event, *, subject: str, body: str, actor: User,
                      now: datetime | None = None) -> AnnouncementMail:
    """Record the announcement and queue the job that queues its mails (`mail.announcement`): bulk mail to
    every registered person (unsubscribe link; none to those who unsubscribed). At most ANNOUNCEMENT_MAIL_LIMIT
    per hour and event. Flushes.

    The mails are rendered by the job, not in the request: ten thousand of them (each in its reader's language)
    would hold the request, and under eventlet the event loop, for seconds."""
    if not has_permission(actor, event, Permission.SEND_ANNOUNCEMENT):
        raise NotAllowed(_("Only organisers may send announcements."))
    subject, body = check_announcement(subject=subject, body=body)
    now = now or utcnow()
    limit = get_settings().announcement_mail_limit
    recent = db.session.scalar(select(func.count(AnnouncementMail.id)).where(
        AnnouncementMail.event_id == event.id, AnnouncementMail.created_at > now - timedelta(hours=1))) or 0
    if recent >= limit:
        raise RateLimited(_("At most %(n)d announcement mails per hour may be sent for this event. Please try "
                            "again later.", n=limit))
    record = AnnouncementMail(event_id=event.id, subject=subject, body=body, sent_by_id=actor.id, created_at=now)
    db.session.add(record)
    db.session.flush()
    jobs.enqueue(ANNOUNCEMENT_JOB, {"announcement_id": record.id}, event_id=event.id,
                 label=subject, max_attempts=5)
    return record


def queue_announcement_mails(announcement_id: int, *, batch: int = ANNOUNCEMENT_BATCH,
                             pause: Callable[[], Any] = lambda: time.sleep(0)) -> int:
    """The job: queue the announcement's mails in batches of `batch` recipients by user id, each batch committed
    with the record's progress (a retry continues after the last committed batch), `pause()` between batches
    so other work runs. Returns the number queued by this call."""
    record = db.session.get(AnnouncementMail, announcement_id)
    event = db.session.get(Event, record.event_id) if record is not None else None
    if record is None or event is None:
        raise jobs.JobFailed("the announcement no longer exists")
    queued = 0
    while record.queued_at is None:
        people = db.session.scalars(_recipients_query(event).where(User.id > record.queued_through_user_id)
                                    .limit(batch)).all()
        for user in people:
            with mail_locale(user, event):
                if send_mail(to=user.email, to_name=user.name, event_id=event.id, bulk=True,
                             subject=record.subject, body=record.body) is not None:
                    record.recipients += 1
                    queued += 1
            record.queued_through_user_id = user.id
        if len(people) < batch:
            record.queued_at = utcnow()
        db.session.commit()
        pause()
    return queued


def run_announcement_job(app: Any, payload: dict[str, Any]) -> None:
    with app.test_request_context():  # mails link back to the site: the same links as from a request
        queue_announcement_mails(int(payload.get("announcement_id") or 0))


def recent_announcement_mails(event: Event, limit: int = 10) -> list[AnnouncementMail]:
    return list(db.session.scalars(select(AnnouncementMail).where(AnnouncementMail.event_id == event.id)
                                   .order_by(AnnouncementMail.created_at.desc()).limit(limit)))


# --- the account's rights -----------------------------------------------------------------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    rows = db.session.execute(select(MailPreference, Event).join(Event, Event.id == MailPreference.event_id)
                              .where(MailPreference.user_id == user_id).order_by(MailPreference.id)).all()
    return {"mail_preferences": [{"event": event.slug, "reminder_minutes": preference.reminder_minutes,
                                  "slides_notice": preference.wants_slides_notice} for preference, event in rows]}


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    for model in (MailPreference, SentReminder):
        for row in db.session.scalars(select(model).where(model.user_id == user_id)).all():
            db.session.delete(row)
    db.session.flush()
