"""Outgoing mail: SMTP when `MAIL_SERVER` is configured, otherwise an outbox that organisers read in the browser."""

from __future__ import annotations

import re
import smtplib
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app, has_request_context, url_for
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conference.core import after_commit
from conference.core.db import UTCDateTime, utcnow
from conference.extensions import db

SMTP_TIMEOUT_SECONDS = 15
# Absolute links, and the site paths that mails carry when no EXTERNAL_URL is set.
LINK_PATTERN = re.compile(r"(https?://[^\s<>\"]+|/(?:events|account|login)\b[^\s<>\"]*)")


class OutboxMessage(db.Model):  # type: ignore[name-defined,misc]
    """A mail that was not sent over SMTP (none configured); organisers of its event read it in the browser."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _clean_header(value: str) -> str:
    """Header values must not carry line breaks (header injection); collapse them to spaces."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def send_mail(*, to: str, subject: str, body: str, event_id: int | None = None) -> OutboxMessage | None:
    """Send one plain-text mail as part of the current unit of work.

    With SMTP the mail leaves only after the caller's commit succeeded (deferred); without SMTP an outbox row
    is added to the session and committed with the caller's transaction. Returns the outbox row, if any.
    """
    to, subject = _clean_header(to), _clean_header(subject)[:200]
    if current_app.config.get("MAIL_SERVER"):
        after_commit.defer(_deliver_smtp, current_app._get_current_object(),  # type: ignore[attr-defined]
                           to, subject, body)
        return None
    message = OutboxMessage(event_id=event_id, recipient=to[:254], subject=subject, body=body)
    db.session.add(message)
    db.session.flush()
    return message


def _deliver_smtp(app: object, to: str, subject: str, body: str) -> None:
    """Deliver over SMTP; a failure is logged, never raised into the request that already committed."""
    from flask import Flask

    assert isinstance(app, Flask)
    config = app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=str(config["MAIL_FROM"]).rpartition("@")[2] or None)
    message.set_content(body)
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], int(config.get("MAIL_PORT") or 25),
                          timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        app.logger.error("mail to %s could not be sent: %s", to, error)


def external_url(endpoint: str, **values: object) -> str:
    """An absolute link for mails and exports, built from `EXTERNAL_URL`, never from the request's Host header.

    Without `EXTERNAL_URL` (a laptop demo) the link falls back to `SERVER_NAME`, else stays a site path,
    which the outbox page renders as a working link.
    """
    config = current_app.config
    if has_request_context():
        path = url_for(endpoint, **values)  # type: ignore[arg-type]
    else:
        adapter = current_app.url_map.bind("localhost", script_name=config.get("APPLICATION_ROOT") or "/")
        path = adapter.build(endpoint, values)  # type: ignore[arg-type]
    base = config.get("EXTERNAL_URL")
    if base:
        return str(base).rstrip("/") + path
    if config.get("SERVER_NAME"):
        return f"{config.get('PREFERRED_URL_SCHEME') or 'http'}://{config['SERVER_NAME']}{path}"
    return path


def link_segments(body: str) -> list[tuple[str, str]]:
    """Split a mail body into text and link pieces; the outbox pages escape both and link only the latter."""
    pieces: list[tuple[str, str]] = []
    position = 0
    for match in LINK_PATTERN.finditer(body):
        pieces.append(("text", body[position:match.start()]))
        pieces.append(("link", match.group(0)))
        position = match.end()
    pieces.append(("text", body[position:]))
    return pieces
