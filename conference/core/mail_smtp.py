"""Talking to the mail server: the MAIL_* settings of a pass, the MIME message of a queued mail, the SMTP
connection (TLS with a checked certificate) and sending one mail, with failures told apart: the server's
(`ServerUnavailable`) from this one mail's (`Refused`)."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlsplit

from markupsafe import escape

from conference.core.mail import ADDRESS_PATTERN, OutboxMessage, link_segments
from conference.settings import settings_of

log = logging.getLogger("conference.mail")



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


def close_connection(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()

