"""Certificates of attendance: the PDF's text (read back with pypdfium2, umlauts included), the threshold, the
verification page for a genuine and a forged code, the mail with a link, bulk generation into a ZIP."""

from __future__ import annotations

import io
import re
import time
import zipfile
from typing import Any

import pytest
from sqlalchemy import select

from conference.attendance.models import Certificate
from conference.core import jobs
from conference.core.jobs import Job, JobStatus
from conference.core.mail import OutboxMessage
from conference.core.permissions import Role
from conference.extensions import db
from tests.attendance.helpers import T0, present, world
from tests.fixtures.accounts import csrf_token, login
from tests.support.pdfs import pdf_text


@pytest.fixture
def stage(app: Any, create_event: Any, create_session: Any, person: Any) -> dict[str, Any]:
    w = world(create_event, create_session, person)
    event, (first, second), (joerg, aenne, _zoe) = w["event"], w["sessions"], w["people"]
    present(event, joerg, f"session:{first.id}", range(T0, T0 + 45))
    present(event, joerg, f"session:{second.id}", range(T0 + 50, T0 + 62))
    present(event, aenne, f"session:{first.id}", range(T0, T0 + 10))  # below the threshold of 30
    w["organiser"] = person(event, Role.ORGANISER, name="Olga Orga")
    return w


def download(client: Any, slug: str) -> Any:
    response = client.get(f"/account/attendance/{slug}/certificate.pdf")
    data = response.get_data()
    response.close()
    return response, data


def test_pdf_names_the_person_event_and_sessions_with_umlauts(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["people"][0].email)
    response, data = download(client, "tagung")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "Jörg Müller" in text
    assert "Fachtagung Wärmewende" in text
    assert "Eröffnung und Grüße" in text and "45 min" in text
    assert "Podium: Städte & Gemeinden" in text and "12 min" in text
    assert "57 minutes" in text
    certificate = db.session.scalar(select(Certificate).where(Certificate.user_id == stage["people"][0].id))
    assert certificate is not None and f"/certificates/{certificate.code}" in text.replace("\r", "").replace("\n", "")


def test_below_threshold_gets_no_certificate(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["people"][1].email)
    response, _data = download(client, "tagung")
    assert response.status_code == 403
    assert db.session.scalar(select(Certificate)) is None


def test_verification_page_genuine_and_forged(client: Any, stage: dict[str, Any], app: Any) -> None:
    login(client, stage["people"][0].email)
    _response, data = download(client, "tagung")
    code = db.session.scalar(select(Certificate.code))
    anonymous = app.test_client()
    genuine = anonymous.get(f"/certificates/{code}")
    html = genuine.get_data(as_text=True)
    assert genuine.status_code == 200 and "This certificate is genuine." in html
    assert "Jörg Müller" in html and "Fachtagung Wärmewende" in html and "Eröffnung und Grüße" in html
    assert stage["people"][0].email not in html  # name, event and sessions, nothing else
    forged_code = code[:-1] + ("A" if code[-1] != "A" else "B")
    for bad in (forged_code, "x", "a" * 200, "%00", "..%2F"):
        forged = anonymous.get(f"/certificates/{bad}")
        assert forged.status_code == 404, bad
        assert "This certificate is genuine." not in forged.get_data(as_text=True)
    match = re.search(r"/certificates/([A-Za-z0-9_-]{22})", pdf_text(data).replace("\r", "").replace("\n", ""))
    assert match and match.group(1) == code  # the printed address is the one that verifies


def test_downloading_again_keeps_the_code(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["people"][0].email)
    download(client, "tagung")
    first = db.session.scalar(select(Certificate.code))
    download(client, "tagung")
    db.session.expire_all()
    assert db.session.scalars(select(Certificate.code)).all() == [first]


def test_mail_on_request_sends_a_link_not_an_attachment(client: Any, stage: dict[str, Any]) -> None:
    login(client, stage["people"][0].email)
    token = csrf_token(client, "/account/attendance")
    assert client.post("/account/attendance/tagung/certificate/mail", data={}).status_code == 400  # CSRF
    response = client.post("/account/attendance/tagung/certificate/mail", data={"csrf_token": token})
    assert response.status_code == 303
    mail = db.session.scalar(select(OutboxMessage))
    assert mail is not None and mail.recipient == stage["people"][0].email
    assert "/account/attendance/tagung/certificate.pdf" in mail.body
    for _ in range(2):  # MAIL_REQUEST_LIMIT_ACCOUNT: 3 an hour
        assert client.post("/account/attendance/tagung/certificate/mail",
                           data={"csrf_token": token}).status_code == 303
    refused = client.post("/account/attendance/tagung/certificate/mail", data={"csrf_token": token})
    assert refused.status_code == 429 and "Too many mails were requested." in refused.get_data(as_text=True)
    assert len(db.session.scalars(select(OutboxMessage)).all()) == 3


def test_bulk_generation_writes_a_zip_of_every_qualifying_certificate(client: Any, stage: dict[str, Any],
                                                                      app: Any) -> None:
    login(client, stage["organiser"].email)
    slug = stage["event"].slug
    token = csrf_token(client, f"/manage/events/{slug}/attendance")
    response = client.post(f"/manage/events/{slug}/attendance/certificates", data={"csrf_token": token})
    assert response.status_code == 303
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = client.get(f"/manage/events/{slug}/attendance/certificates.zip")
        if answer.status_code == 200:
            break
        answer.close()
        time.sleep(0.1)
    assert answer.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(answer.get_data()))
    answer.close()
    names = archive.namelist()
    assert len(names) == 1  # Änne stayed 10 minutes: below the threshold
    assert "Jörg Müller" in pdf_text(archive.read(names[0]))
    jobs.wait_idle(app)
    db.session.expire_all()
    job = db.session.scalar(select(Job).where(Job.kind == "attendance.certificates"))
    assert job is not None and job.status == JobStatus.DONE and job.event_id == stage["event"].id
    dashboard = client.get(f"/manage/events/{slug}/attendance").get_data(as_text=True)
    assert re.search(r"1 certificates? in [0-9.]+ seconds|1 Bescheinigung", dashboard), dashboard[-3000:]


def test_bulk_generation_is_a_queued_job_and_a_second_click_adds_none(client: Any, stage: dict[str, Any],
                                                                     app: Any) -> None:
    from conference.attendance import jobs as certificate_jobs

    event = stage["event"]
    with app.test_request_context():
        assert certificate_jobs.start_bulk(event, locale="de") is True
        assert certificate_jobs.start_bulk(event, locale="de") is False  # queued: not twice
        db.session.rollback()  # nothing committed: nothing queued
    assert db.session.scalar(select(Job).where(Job.kind == "attendance.certificates")) is None
    login(client, stage["organiser"].email)
    token = csrf_token(client, f"/manage/events/{event.slug}/attendance")
    assert client.post(f"/manage/events/{event.slug}/attendance/certificates",
                       data={"csrf_token": token}).status_code == 303
    jobs.wait_idle(app)
    db.session.expire_all()
    rows = db.session.scalars(select(Job).where(Job.kind == "attendance.certificates")).all()
    assert [row.status for row in rows] == [JobStatus.DONE]
    certificate = db.session.scalar(select(Certificate).where(Certificate.event_id == event.id))
    assert certificate is not None and certificate.total_minutes == 57
    state = certificate_jobs.bulk_state(app, event)
    assert state["ready"] and state["count"] == 1 and not state["running"] and not state["error"]


def test_bulk_generation_for_a_removed_event_fails_for_good(app: Any, stage: dict[str, Any]) -> None:
    from conference.attendance.jobs import run_bulk

    with pytest.raises(jobs.JobFailed):
        run_bulk(app, {"event_id": 987654, "locale": "de"})
