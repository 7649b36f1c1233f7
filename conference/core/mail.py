"""Outgoing mail: a queue in the database, written in the caller's transaction and sent by `core.mail_queue`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any

from flask import current_app, has_request_context, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from conference.core import after_commit
from conference.core.db import UTCDateTime, utcnow
from conference.core.errors import ValidationFailed
from conference.extensions import db
from conference.settings import get_settings

# Absolute links, and the site paths that mails carry when no EXTERNAL_URL is set.
LINK_PATTERN = re.compile(r"https?://[^\s<>\"']+|/(?:events|account|login)\b[^\s<>\"']*")
TRAILING_PUNCTUATION = ".,;:!?)]'\""
UNSUBSCRIBE_SALT = "mail-unsubscribe"
# One plain address and nothing else: no display name, comment, group or list (a comma would add recipients).
ADDRESS_PATTERN = re.compile(r"^[^@\s<>()\[\],;:\\\"']{1,64}@[^@\s<>()\[\],;:\\\"']{1,189}$")


class MailStatus(StrEnum):
    QUEUED = "queued"  # waiting for its (next) attempt, or for a mail server to be configured
    SENDING = "sending"  # claimed by one sender
    SENT = "sent"
    FAILED = "failed"  # refused for good, or not delivered within MAIL_GIVE_UP_AFTER


class OutboxMessage(db.Model):  # type: ignore[name-defined,misc]
    """One mail: queued in the transaction that caused it, delivered over SMTP after the commit.

    Without a mail server it stays queued, and organisers of its event read it on the outbox page.
    """

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(254))
    recipient_name: Mapped[str] = mapped_column(String(120), default="")
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(5), default="de")
    # Made once, so every attempt carries the same id and a receiver can recognise a repeated delivery.
    message_id: Mapped[str] = mapped_column(String(255))
    unsubscribe_url: Mapped[str | None] = mapped_column(String(1000))  # bulk mail only
    status: Mapped[str] = mapped_column(String(10), default=MailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailOptOut(db.Model):  # type: ignore[name-defined,misc]
    """An address that asked for no more bulk mail of an event (event_id None: of the deployment)."""

    __tablename__ = "mail_opt_outs"
    __table_args__ = (UniqueConstraint("email", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _clean_header(value: str) -> str:
    """Header values must not carry line breaks (header injection); collapse them to spaces."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def mail_address(value: str) -> str:
    """The one recipient address in `value`, lower-cased; anything that could name a second recipient or a
    header (line breaks, commas, display names) is refused."""
    address = value.strip().lower()
    if len(address) > 254 or not ADDRESS_PATTERN.match(address) or any(ord(ch) < 32 for ch in address):
        raise ValidationFailed(_("This e-mail address cannot receive mail."), field="email", code="bad_address")
    return address


def recipient_locale(user: Any = None, event: Any = None) -> str:
    """The language to write to someone in: their own choice, else the event's language, else the default
    (German)."""
    languages = current_app.config["LANGUAGES"]
    for candidate in (getattr(user, "locale", None), getattr(event, "language", None)):
        if candidate in languages:
            return str(candidate)
    return str(current_app.config["BABEL_DEFAULT_LOCALE"])


@contextmanager
def mail_locale(user: Any = None, event: Any = None) -> Iterator[str]:
    """Render a mail in the recipient's language, whatever the language of the request that sends it::

        with mail_locale(user, event):
            send_mail(to=user.email, subject=_("..."), body=_("..."), event_id=event.id)
    """
    locale = recipient_locale(user, event)
    with force_locale(locale):
        yield locale


def send_mail(*, to: str, subject: str, body: str, event_id: int | None = None, to_name: str = "",
              locale: str | None = None, bulk: bool = False) -> OutboxMessage | None:
    """Queue one plain-text mail in the current transaction; the sender delivers it after the commit.

    A rolled-back transaction sends nothing; a committed one is delivered even across restarts. `locale`
    (default: the language in force, see `mail_locale`) sets the mail's language tag. A `bulk` mail
    (announcements) carries a one-click unsubscribe link and header, and is not queued for an address that
    unsubscribed. Raises ValidationFailed for an address that is not one plain address. Returns the queued
    row, or None for a skipped bulk mail.
    """
    address = mail_address(to)
    if bulk and _opted_out(address, event_id):
        return None
    language = locale or str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])
    message = OutboxMessage(event_id=event_id, recipient=address, recipient_name=_clean_header(to_name)[:120],
                            subject=_clean_header(subject)[:200], body=body, locale=language[:5],
                            message_id=_new_message_id(), status=MailStatus.QUEUED, attempts=0,
                            next_attempt_at=utcnow())
    if bulk:
        message.unsubscribe_url = external_url("mail.unsubscribe", token=unsubscribe_token(address, event_id))
        with force_locale(language):
            footer = _("You receive this mail because you are registered. To receive no more mails like this: "
                       "%(link)s", link=message.unsubscribe_url)
        message.body = f"{body.rstrip()}\n\n-- \n{footer}\n"
    db.session.add(message)
    db.session.flush()
    after_commit.defer(_wake_sender, current_app._get_current_object())  # type: ignore[attr-defined]
    return message


def _new_message_id() -> str:
    from email.utils import make_msgid

    domain = get_settings().mail_from.rpartition("@")[2].strip(" >") or "localhost"
    return make_msgid(domain=domain)


def _wake_sender(app: Any) -> None:
    sender = app.extensions.get("conference_mail_sender")
    if sender is not None:
        sender.wake()


def _opted_out(address: str, event_id: int | None) -> bool:
    scope = MailOptOut.event_id.is_(None) if event_id is None else MailOptOut.event_id == event_id
    return db.session.scalar(select(MailOptOut.id).where(MailOptOut.email == address, scope)) is not None


def _unsubscribe_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(address: str, event_id: int | None) -> str:
    """Signed, without expiry: the link in a mail from last year still unsubscribes."""
    return str(_unsubscribe_serializer().dumps([address, event_id]))


def read_unsubscribe_token(token: str) -> tuple[str, int | None] | None:
    """(address, event id) of a genuine unsubscribe link, else None."""
    try:
        data = _unsubscribe_serializer().loads(token)
    except BadSignature:
        return None
    if (not isinstance(data, list) or len(data) != 2 or not isinstance(data[0], str)
            or not (data[1] is None or isinstance(data[1], int))):
        return None
    return data[0], data[1]


def opt_out(address: str, event_id: int | None) -> MailOptOut:
    """Record that `address` wants no more bulk mail of the event (idempotent). Flushes."""
    scope = MailOptOut.event_id.is_(None) if event_id is None else MailOptOut.event_id == event_id
    existing = db.session.scalar(select(MailOptOut).where(MailOptOut.email == address, scope))
    if existing is not None:
        return existing
    record = MailOptOut(email=address, event_id=event_id)
    db.session.add(record)
    db.session.flush()
    return record


def external_url(endpoint: str, **values: object) -> str:
    """An absolute link for mails and exports, built from `EXTERNAL_URL`, never from the request's Host header.

    `conference run` refuses to start without `EXTERNAL_URL` unless `DEVELOPMENT` is set; then it records the
    address it serves on as `LOCAL_URL`. Without either (tests, scripts) the link falls back to `SERVER_NAME`,
    else stays a site path, which the outbox page renders as a working link.
    """
    config = current_app.config
    if has_request_context():
        path = url_for(endpoint, **values)  # type: ignore[arg-type]
    else:
        adapter = current_app.url_map.bind("localhost", script_name=config.get("APPLICATION_ROOT") or "/")
        path = adapter.build(endpoint, values)  # type: ignore[arg-type]
    base = get_settings().external_url or config.get("LOCAL_URL")
    if base:
        return str(base).rstrip("/") + path
    if config.get("SERVER_NAME"):
        return f"{config.get('PREFERRED_URL_SCHEME') or 'http'}://{config['SERVER_NAME']}{path}"
    return path


def link_segments(body: str) -> list[tuple[str, str]]:
    """Split a mail body into ("text", ...) and ("link", ...) pieces, neither escaped: the caller (the outbox
    pages, the mail's HTML part) escapes both and links only the latter. A link is an http(s) address or a site
    path, nothing else (no `javascript:`); a full stop or bracket after it ends the sentence, not the link."""
    pieces: list[tuple[str, str]] = []
    position = 0
    for match in LINK_PATTERN.finditer(body):
        url = match.group(0).rstrip(TRAILING_PUNCTUATION)
        pieces.append(("text", body[position:match.start()]))
        pieces.append(("link", url))
        position = match.start() + len(url)
    pieces.append(("text", body[position:]))
    return pieces
