"""The mail queue's sending pass: one claim per mail, retries with backoff, the background sender.

Every process that serves (`conference run`) runs one sender as a background task; `conference mail
send-queued` runs one pass by hand. A mail is claimed with a conditional UPDATE (`status='queued'` ->
`'sending'`) that only one of several senders can win, on SQLite and PostgreSQL alike, so no two senders
deliver the same mail. The SMTP conversation (`core.mail_smtp`) runs in the background task: under eventlet
and gevent its socket waits are cooperative, so a mail server that hangs holds up the sender, never a request.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from conference.core.db import utcnow
from conference.core.mail import MailStatus, OutboxMessage
from conference.core.mail_smtp import MailSettings, Refused, ServerUnavailable, close_connection, connect, transmit
from conference.extensions import db
from conference.settings import settings_of

log = logging.getLogger("conference.mail")

BATCH_LIMIT = 200  # mails per pass; the sender starts the next pass at once when a pass was full
MAX_QUEUE_PAUSE = timedelta(minutes=30)  # while the server is down, the queue waits at most this long per try

Clock = Callable[[], datetime]


@dataclass
class SendReport:
    """What one or more passes did."""

    sent: int = 0
    retried: int = 0  # attempts that failed and were scheduled again
    failed: int = 0  # given up: refused for good, or too old
    requeued: int = 0  # claims of a sender that died, put back in the queue
    message_ids: list[str] = field(default_factory=list)  # of the mails sent

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.requeued += other.requeued
        self.message_ids.extend(other.message_ids)


# --- the queue --------------------------------------------------------------------------------------------


def send_queued(app: Any, *, clock: Clock = utcnow, limit: int = BATCH_LIMIT) -> SendReport:
    """One pass: deliver the mails that are due, up to `limit`, over one connection.

    Commits after every claim and every outcome, so a sender that dies loses at most the claim it held
    (queued again after MAIL_SENDING_LEASE). When the server fails, the pass ends and the rest of the queue
    waits with the failed mail. Without MAIL_SERVER nothing happens: the mails stay in the outbox.
    """
    settings = MailSettings.from_config(app.config)
    report = SendReport()
    if not settings.server:
        return report
    if settings.problem():  # a setting to fix, not a reason to spend the mails' attempts
        log.error("mail not sent: %s", settings.problem())
        return report
    with app.app_context():
        report.requeued = _requeue_abandoned(clock(), settings)
        smtp: smtplib.SMTP | None = None
        try:
            while report.handled < limit:
                mail = _claim_next(clock())
                if mail is None:
                    break
                now = clock()
                if mail.attempts == 1 and now >= mail.created_at + settings.give_up_after:
                    _finish(mail, MailStatus.FAILED, "not sent within the time limit after it was queued")
                    report.failed += 1
                    continue
                try:
                    if smtp is None:
                        smtp = connect(settings)
                    transmit(smtp, mail, settings)
                except ServerUnavailable as error:
                    close_connection(smtp)
                    smtp = None
                    _record_failure(mail, str(error), clock(), settings, report)
                    _pause_queue(mail, clock(), settings)
                    log.warning("mail server unavailable: %s", error)
                    break
                except Refused as error:
                    if error.permanent:
                        _finish(mail, MailStatus.FAILED, str(error))
                        report.failed += 1
                    else:
                        _record_failure(mail, str(error), clock(), settings, report)
                else:
                    mail.status = MailStatus.SENT
                    mail.sent_at = clock()
                    mail.claimed_at = None
                    db.session.commit()
                    report.sent += 1
                    report.message_ids.append(mail.message_id)
        finally:
            close_connection(smtp)
            db.session.rollback()
    return report


def _requeue_abandoned(now: datetime, settings: MailSettings) -> int:
    """Claims older than the lease belong to a sender that died mid-send: queue them again."""
    result: Any = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == MailStatus.SENDING, OutboxMessage.claimed_at < now - settings.sending_lease)
        .values(status=MailStatus.QUEUED, claimed_at=None, next_attempt_at=now)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount:
        log.warning("%s mails claimed by a sender that stopped are queued again", result.rowcount)
    return int(result.rowcount or 0)


def _claim_next(now: datetime) -> OutboxMessage | None:
    """The next due mail, claimed for this sender; None when nothing is due."""
    while True:
        candidates = db.session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == MailStatus.QUEUED, OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(20)).all()
        db.session.rollback()  # end the read: SQLite would otherwise hold its snapshot
        if not candidates:
            return None
        for mail_id in candidates:
            result: Any = db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == mail_id, OutboxMessage.status == MailStatus.QUEUED)
                .values(status=MailStatus.SENDING, claimed_at=now, attempts=OutboxMessage.attempts + 1)
                .execution_options(synchronize_session=False))
            db.session.commit()
            if result.rowcount == 1:  # 0: another sender won this one
                return db.session.get(OutboxMessage, mail_id, populate_existing=True)


def _backoff(mail: OutboxMessage, settings: MailSettings) -> timedelta:
    """1, 2, 4, ... times MAIL_RETRY_FIRST after the mail's first, second, third, ... attempt."""
    return settings.retry_first * (2 ** min(mail.attempts - 1, 30))


def _record_failure(mail: OutboxMessage, error: str, now: datetime, settings: MailSettings,
                    report: SendReport) -> None:
    """Try again after 1, 2, 4, ... times MAIL_RETRY_FIRST, the last time at the give-up time; then failed."""
    deadline = mail.created_at + settings.give_up_after
    if now >= deadline:
        _finish(mail, MailStatus.FAILED, error)
        report.failed += 1
        return
    delay = _backoff(mail, settings)
    mail.status = MailStatus.QUEUED
    mail.next_attempt_at = min(now + delay, deadline)
    mail.claimed_at = None
    mail.last_error = error
    db.session.commit()
    report.retried += 1


def _pause_queue(mail: OutboxMessage, now: datetime, settings: MailSettings) -> None:
    """The server is down: the other due mails wait too (at most MAX_QUEUE_PAUSE), instead of each
    spending an attempt on it in the next seconds."""
    pause = min(_backoff(mail, settings), MAX_QUEUE_PAUSE)
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == MailStatus.QUEUED, OutboxMessage.next_attempt_at < now + pause,
               OutboxMessage.id != mail.id)
        .values(next_attempt_at=now + pause)
        .execution_options(synchronize_session=False))
    db.session.commit()


def _finish(mail: OutboxMessage, status: MailStatus, error: str) -> None:
    mail.status = status
    mail.claimed_at = None
    mail.last_error = error
    db.session.commit()
    log.warning("mail %s to %s failed for good: %s", mail.id, mail.recipient, error)


def next_due(app: Any) -> datetime | None:
    """When the earliest queued mail is due (None: nothing queued)."""
    with app.app_context():
        due = db.session.scalar(select(func.min(OutboxMessage.next_attempt_at))
                                .where(OutboxMessage.status == MailStatus.QUEUED))
        db.session.rollback()
    return due  # min() keeps the column's type: an aware UTC datetime on SQLite too


# --- the background sender --------------------------------------------------------------------------------


class MailSender:
    """Runs passes until the process ends: at once when a commit in this process queued mail, else when the
    next mail is due, and at least every MAIL_POLL_INTERVAL (mails queued by other processes)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # A threading.Event is cooperative under eventlet's and gevent's monkey-patching.
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        settings = MailSettings.from_config(self.app.config)
        while True:
            self._wake.clear()
            full = False
            try:
                report = send_queued(self.app)
                full = report.handled >= BATCH_LIMIT
                due = next_due(self.app)
            except Exception:  # noqa: BLE001 - the sender must outlive a database hiccup
                log.exception("mail sender pass failed")
                due = None
            if full:
                continue
            wait = settings.poll_interval
            if due is not None:
                wait = max(0.0, min(wait, (due - utcnow()).total_seconds()))
            if wait > 0:
                self._wake.wait(wait)


def start_mail_sender(app: Any, start_background_task: Callable[..., Any]) -> MailSender | None:
    """Start the background sender of this process (with a configured mail server only)."""
    if not settings_of(app.config).mail_server:
        return None
    sender = MailSender(app)
    app.extensions["conference_mail_sender"] = sender
    start_background_task(sender.run)
    return sender
