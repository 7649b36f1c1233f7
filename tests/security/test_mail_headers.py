"""Header injection in mail: names, subjects and addresses with line breaks or a second recipient.

Delivered through a real SMTP server process, then read back: the message that arrives has exactly the
headers and the one recipient the platform meant, whatever a name, a title or an address contained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from conference.core.after_commit import commit
from conference.core.errors import ValidationFailed
from conference.core.mail import OutboxMessage, send_mail
from conference.core.mail_queue import send_queued
from conference.extensions import db
from conference.speakers.models import SpeakerInvitation
from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.smtp import SmtpServer
from tests.security.conftest import Evidence

pytestmark = pytest.mark.timeout(60)

INJECTED = "\r\nBcc: victim@example.org\r\nX-Injected: 1\r\n\r\nInjected body"
HEADERS_WE_SET = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "Content-Type",
                  "Content-Language", "MIME-Version"}


def outbox_count() -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_line_breaks_in_names_and_subjects_cannot_add_headers_or_recipients(
        app: Flask, smtp_server: Callable[..., SmtpServer], evidence: Evidence) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    send_mail(to="anna@example.org", to_name=f"Anna{INJECTED}", subject=f"Hallo{INJECTED}", body="Text\n")
    send_mail(to="bert@example.org", to_name="Bert\nCc: victim@example.org", subject="Ok\rBcc: victim@example.org",
              body="Text\n")
    commit()
    assert send_queued(app).sent == 2
    received = server.received()
    evidence.add("mail_header_injection_cases", 2)
    assert [mail.rcpt_tos for mail in received] == [["anna@example.org"], ["bert@example.org"]]
    for mail in received:
        message = mail.message
        assert set(message.keys()) == HEADERS_WE_SET, message.keys()
        assert len(message.get_all("To") or []) == 1
        assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
        assert b"\r\nBcc:" not in mail.raw and b"\r\nX-Injected:" not in mail.raw and b"\r\nCc:" not in mail.raw
    assert received[0].message["Subject"] == "Hallo Bcc: victim@example.org X-Injected: 1 Injected body"
    assert received[0].message["To"].addresses[0].addr_spec == "anna@example.org"
    text = received[0].message.get_body(("plain",))
    assert text is not None and text.get_content().replace("\r\n", "\n") == "Text\n"


@pytest.mark.parametrize("address", [
    "anna@example.org, victim@example.org",
    "anna@example.org;victim@example.org",
    "anna,victim@example.org",
    "anna@example.org\r\nBcc: victim@example.org",
    "anna@example.org\nvictim@example.org",
    "Anna <anna@example.org>",
    "anna@example.org (victim@example.org)",
    "\"anna\"@example.org",
    "anna@example.org\x00",
    "anna",
])
def test_an_address_that_is_not_one_plain_address_is_refused(app: Flask, address: str,
                                                             evidence: Evidence) -> None:
    with pytest.raises(ValidationFailed) as refused:
        send_mail(to=address, subject="Hallo", body="Text\n")
    evidence.add("mail_address_injection_cases")
    assert refused.value.code == "bad_address" and refused.value.field == "email"
    db.session.rollback()
    assert outbox_count() == 0


def test_invitation_to_an_address_with_a_second_recipient_is_refused_and_nothing_stored(
        app: Flask, client: FlaskClient, slides_stage: Any, evidence: Evidence) -> None:
    """The invitation form's address check lets `a,b@x` through; the mail layer refuses it, and the route
    rolls the invitation back with a message at the field (German: the pages speak German by default)."""
    login(client, "orga@example.org")
    manage = f"/manage/events/{slides_stage.event.slug}/speakers"
    token = csrf_token(client, manage)
    response = client.post(f"{manage}/invite", data={
        "csrf_token": token, "session_id": slides_stage.session.id, "speaker_id": 0, "name": "Eve",
        "email": "eve,victim@example.org", "role": "speaker"})
    evidence.add("mail_address_injection_cases")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "An diese E-Mail-Adresse kann keine Mail geschickt werden." in body
    assert outbox_count() == 0
    assert db.session.scalar(select(func.count()).select_from(SpeakerInvitation)) == 0


def test_session_title_with_line_breaks_stays_in_the_subject(
        app: Flask, slides_stage: Any, smtp_server: Callable[..., SmtpServer], evidence: Evidence) -> None:
    """A title stored with line breaks (by any path) reaches the reminder's subject as one line."""
    from conference.presentations.services import send_slide_reminder

    server = smtp_server()
    app.config.update(server.settings())
    slides_stage.session.title = f"Daten{INJECTED}"
    commit()
    with app.test_request_context("/"):
        send_slide_reminder(slides_stage.session, actor=slides_stage.organiser)
        commit()
    assert send_queued(app).sent == 1
    (mail,) = server.received()
    evidence.add("mail_header_injection_cases")
    assert mail.rcpt_tos == ["speaker@example.org"]
    assert set(mail.message.keys()) == HEADERS_WE_SET
    headers = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in headers and b"\nX-Injected:" not in headers
