"""Delivering the mail queue over SMTP: one claim per mail, retries with backoff, multipart messages, the sender.

Every process that serves (`conference run`) runs one sender as a background task; `conference mail
send-queued` runs one pass by hand. A mail is claimed with a conditional UPDATE (`status='queued'` ->
`'sending'`) that only one of several senders can win, on SQLite and PostgreSQL alike, so no two senders
deliver the same mail. The SMTP conversation runs in the background task: under eventlet and gevent its socket
waits are cooperative, so a mail server that hangs holds up the sender, never a request.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlsplit

from markupsafe import escape
from sqlalchemy import func, select, update

from conference.core.db import utcnow
from conference.core.mail import ADDRESS_PATTERN, MailStatus, OutboxMessage, link_segments
from conference.extensions import db
from conference.settings import settings_of

log = logging.getLogger("conference.mail")

BATCH_LIMIT = 200  # mails per pass; the sender starts the next pass at once when a pass was full
MAX_QUEUE_PAUSE = timedelta(minutes=30)  # while the server is down, the queue waits at most this long per try

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class MailSettings:
    """The MAIL_* settings, read once per pass."""

    server: str | None
    port: int
    use_tls: bool
    use_ssl: bool
    username: str | None
    password: str
    ca_file: str | None
    sender: str
    helo_name: str | None
    timeout: float
    retry_first: timedelta
    give_up_after: timedelta
    poll_interval: float
    sending_lease: timedelta

    @classmethod
    def from_config(cls, config: Any) -> MailSettings:
        settings = settings_of(config)
        external = settings.external_url
        return cls(
            server=settings.mail_server,
            port=settings.mail_port,
            use_tls=settings.mail_use_tls,
            use_ssl=settings.mail_use_ssl,
            username=settings.mail_username,
            password=settings.mail_password or "",
            ca_file=settings.mail_tls_ca_file,
            sender=settings.mail_from,
            # Our own name in EHLO; without it smtplib asks DNS for this machine's name before every connection.
            helo_name=urlsplit(external).hostname if external else "localhost",
            timeout=settings.mail_timeout,
            retry_first=timedelta(seconds=settings.mail_retry_first),
            give_up_after=timedelta(seconds=settings.mail_give_up_after),
            poll_interval=settings.mail_poll_interval,
            sending_lease=timedelta(seconds=settings.mail_sending_lease),
        )

    @property
    def envelope_sender(self) -> str:
        return parseaddr(self.sender)[1]

    def problem(self) -> str | None:
        """What keeps these settings from sending anything (checked before any mail is claimed)."""
        if not ADDRESS_PATTERN.match(self.envelope_sender.lower()):
            return f"CONFERENCE_MAIL_FROM is not a mail address: {self.sender!r}"
        return None


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


class ServerUnavailable(Exception):
    """The mail server, not this mail, failed (unreachable, silent, TLS, login, sender refused, hung up)."""


class Refused(Exception):
    """The server refused this one mail; `permanent` for a 5xx answer."""

    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


# --- the message ------------------------------------------------------------------------------------------


def build_message(mail: OutboxMessage, settings: MailSettings) -> EmailMessage:
    """The MIME message: text and HTML alternatives, and headers that the email package checks for line
    breaks (it raises rather than letting a value start a new header)."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = settings.sender
    message["To"] = Address(display_name=mail.recipient_name, addr_spec=mail.recipient) \
        if mail.recipient_name else mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.created_at)  # when it was written, the same on every attempt
    message["Message-ID"] = mail.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the platform
    if mail.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        message["Precedence"] = "bulk"
    message.set_content(mail.body)
    message.add_alternative(html_body(mail.body, locale=mail.locale, title=mail.subject), subtype="html")
    message["Content-Language"] = mail.locale  # after the content: setting content drops Content-* headers
    return message


def html_body(text: str, *, locale: str, title: str) -> str:
    """The plain text as HTML: everything escaped, paragraphs kept, http(s) links clickable."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip("\n")) if p.strip()]
    rendered = "\n".join("<p>" + "<br>\n".join(_linkify(line) for line in p.split("\n")) + "</p>"
                         for p in paragraphs)
    return (f'<!DOCTYPE html>\n<html lang="{escape(locale)}">\n<head><meta charset="utf-8">'
            f"<title>{escape(title)}</title></head>\n<body>\n{rendered}\n</body>\n</html>\n")


def _linkify(line: str) -> str:
    return "".join(f'<a href="{escape(piece)}">{escape(piece)}</a>' if kind == "link" else str(escape(piece))
                   for kind, piece in link_segments(line))


# --- SMTP -------------------------------------------------------------------------------------------------


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) \
            else str(error.smtp_error)
        return f"{error.smtp_code} {' '.join(text.split())}"[:500]
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, answer = next(iter(error.recipients.values()), (0, b""))
        return f"{code} {' '.join(bytes(answer).decode(errors='replace').split())}"[:500]
    return f"{type(error).__name__}: {error}"[:500]


def connect(settings: MailSettings) -> smtplib.SMTP:
    """An SMTP connection, upgraded to TLS and logged in as configured.

    The server's certificate is checked against the system's CAs (or MAIL_TLS_CA_FILE) and its name:
    smtplib alone would accept any certificate, and so hand the password to whoever sits in between.
    """
    assert settings.server
    context = ssl.create_default_context(cafile=settings.ca_file) if settings.use_tls or settings.use_ssl \
        else None
    try:
        if settings.use_ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.server, settings.port, local_hostname=settings.helo_name,
                                                  timeout=settings.timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.server, settings.port, local_hostname=settings.helo_name,
                                timeout=settings.timeout)
        try:
            smtp.ehlo()
            if settings.use_tls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password)
        except BaseException:
            smtp.close()
            raise
    except (smtplib.SMTPException, OSError) as error:
        raise ServerUnavailable(_describe(error)) from error
    return smtp


def transmit(smtp: smtplib.SMTP, mail: OutboxMessage, settings: MailSettings) -> None:
    """Send one mail on an open connection; the envelope names exactly the one stored recipient."""
    try:
        message = build_message(mail, settings)
    except Exception as error:  # noqa: BLE001 - a message that cannot be built never will be
        log.exception("mail %s cannot be built", mail.id)
        raise Refused(f"cannot be built: {error}"[:500], permanent=True) from error
    try:
        smtp.send_message(message, from_addr=settings.envelope_sender, to_addrs=[mail.recipient])
    except smtplib.SMTPRecipientsRefused as error:
        code = next(iter(error.recipients.values()), (0, b""))[0]
        raise Refused(_describe(error), permanent=code >= 500) from error
    except smtplib.SMTPDataError as error:
        raise Refused(_describe(error), permanent=error.smtp_code >= 500) from error
    except smtplib.SMTPNotSupportedError as error:  # e.g. an international address, server without SMTPUTF8
        raise Refused(_describe(error), permanent=True) from error
    except (smtplib.SMTPException, OSError) as error:
        raise ServerUnavailable(_describe(error)) from error


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


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
                    _close(smtp)
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
            _close(smtp)
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


def _record_failure(mail: OutboxMessage, error: str, now: datetime, settings: MailSettings,
                    report: SendReport) -> None:
    """Try again after 1, 2, 4, ... times MAIL_RETRY_FIRST, the last time at the give-up time; then failed."""
    deadline = mail.created_at + settings.give_up_after
    if now >= deadline:
        _finish(mail, MailStatus.FAILED, error)
        report.failed += 1
        return
    delay = settings.retry_first * (2 ** min(mail.attempts - 1, 30))
    mail.status = MailStatus.QUEUED
    mail.next_attempt_at = min(now + delay, deadline)
    mail.claimed_at = None
    mail.last_error = error
    db.session.commit()
    report.retried += 1


def _pause_queue(mail: OutboxMessage, now: datetime, settings: MailSettings) -> None:
    """The server is down: the other due mails wait too (at most MAX_QUEUE_PAUSE), instead of each
    spending an attempt on it in the next seconds."""
    pause = min(settings.retry_first * (2 ** min(mail.attempts - 1, 30)), MAX_QUEUE_PAUSE)
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
