"""Visibility and downloads: private until the session ends, manual publish/hide, headers, previews, archive,
export attachments, dashboard reminders, deletion."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pikepdf
import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.http import parse_options_header

from conference.agenda.models import TimetableSlot
from conference.auth.logins import issue_api_token
from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.mail import OutboxMessage
from conference.core.signals import session_attachments
from conference.extensions import db
from conference.presentations.models import Presentation
from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.agenda import record_release
from tests.fixtures.presentations import FUTURE, PAST, pdf_bytes, pptx_bytes, snapshot, upload, wait_for_thumbnail


def fetch(client, url: str, **kwargs):
    """GET and close the response (file responses hold an open file until closed)."""
    with client.get(url, **kwargs) as response:
        response.get_data()
    return response


def token_for(user) -> str:
    token = issue_api_token(user, name="test")
    commit()
    return token


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}"}


def put_slides(client, stage, filename: str = "Folien.pdf", data: bytes | None = None, session=None) -> dict:
    session = session or stage.session
    response = upload(client, session.id, filename, data or pdf_bytes(), token=token_for(stage.speaker
                      if session.id == stage.session.id else stage.organiser))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def end_session(session, offset: int = 0) -> None:
    """Move the session into the past and release that (slides follow the released end)."""
    start = PAST + timedelta(hours=offset)
    for slot in db.session.scalars(select(TimetableSlot).where(TimetableSlot.session_id == session.id)):
        slot.start_at, slot.end_at = start, start + timedelta(minutes=45)
    commit()
    record_release(session.event)


def download_url(body: dict) -> str:
    return f"/api/v1/sessions/{body['session_id']}/presentations/{body['id']}/download"


def test_download_private_before_session_ends_only_for_speaker_and_organiser(client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    url = download_url(body)
    assert fetch(client, url).status_code == 404
    for who in ("attendee", "other_speaker", "outsider"):
        assert fetch(client, url, headers=bearer(getattr(slides_stage, who))).status_code == 404
    for who in ("speaker", "organiser"):
        assert fetch(client, url, headers=bearer(getattr(slides_stage, who))).status_code == 200


def test_download_published_after_session_end_for_everyone_with_safe_headers(client, slides_stage) -> None:
    body = put_slides(client, slides_stage, filename="Präsentation – Übersicht.pdf")
    end_session(slides_stage.session)
    response = fetch(client, download_url(body))
    assert response.status_code == 200
    assert response.data == pdf_bytes()
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox; frame-ancestors 'none'"
    assert parse_options_header(response.headers["Content-Disposition"]) == (
        "attachment", {"filename": "Präsentation – Übersicht.pdf"})
    assert "filename*=UTF-8''Pr%C3%A4sentation%20%E2%80%93%20%C3%9Cbersicht.pdf" in response.headers[
        "Content-Disposition"]
    listed = fetch(client, f"/api/v1/sessions/{slides_stage.session.id}/presentations").get_json()
    assert [p["visibility"] for p in listed["presentations"]] == ["published"]


def test_earlier_versions_only_for_organisers_and_speakers(client, slides_stage) -> None:
    first = put_slides(client, slides_stage, filename="v1.pdf")
    second = put_slides(client, slides_stage, filename="v2.pptx", data=pptx_bytes())
    end_session(slides_stage.session)
    assert fetch(client, download_url(second)).status_code == 200
    assert fetch(client, download_url(first)).status_code == 404
    assert fetch(client, download_url(first), headers=bearer(slides_stage.organiser)).status_code == 200
    public = fetch(client, f"/api/v1/sessions/{slides_stage.session.id}/presentations").get_json()
    assert [p["version"] for p in public["presentations"]] == [2]


def test_organiser_hides_and_publishes_by_hand(client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    url = f"/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}"
    organiser = bearer(slides_stage.organiser)
    published = client.patch(url, json={"visibility_mode": "published"}, headers=organiser)
    assert published.status_code == 200 and published.get_json()["visibility"] == "published"
    assert fetch(client, download_url(body)).status_code == 200
    end_session(slides_stage.session)
    hidden = client.patch(url, json={"visibility_mode": "hidden"}, headers=organiser)
    assert hidden.get_json()["visibility"] == "private"
    assert fetch(client, download_url(body)).status_code == 404
    assert client.patch(url, json={"visibility_mode": "everyone"}, headers=organiser).status_code == 400
    assert client.patch(url, json={"visibility_mode": "published"},
                        headers=bearer(slides_stage.speaker)).status_code == 403


def test_visibility_form_needs_csrf(app: Flask, client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    login(client, "orga@example.org")
    url = f"/manage/events/{slides_stage.event.slug}/presentations/{body['id']}/visibility"
    assert client.post(url, data={"visibility_mode": "published"}).status_code == 400
    assert db.session.get(Presentation, body["id"]).visibility_mode == "automatic"
    token = csrf_token(client, f"/manage/events/{slides_stage.event.slug}/presentations")
    assert client.post(url, data={"visibility_mode": "published", "csrf_token": token}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Presentation, body["id"]).visibility_mode == "published"


@pytest.mark.parametrize("who", ["attendee", "other_speaker"])
def test_delete_by_attendee_or_other_speaker_refused(app: Flask, client, slides_stage, who) -> None:
    body = put_slides(client, slides_stage)
    end_session(slides_stage.session)  # published: they can see it, still may not delete it
    before = snapshot(app)
    url = f"/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}"
    response = client.delete(url, headers=bearer(getattr(slides_stage, who)))
    assert response.status_code == 403
    assert snapshot(app) == before


def test_delete_private_deck_by_other_speaker_is_404(app: Flask, client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    before = snapshot(app)
    url = f"/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}"
    assert client.delete(url, headers=bearer(slides_stage.other_speaker)).status_code == 404
    assert snapshot(app) == before


def test_delete_by_speaker_removes_row_file_and_preview(app: Flask, client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    wait_for_thumbnail(body["id"])
    empty = snapshot(app)[0]
    assert any(f.startswith("thumbnails/") for f in empty)
    url = f"/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}"
    assert client.delete(url, headers=bearer(slides_stage.speaker)).status_code == 204
    files, counts = snapshot(app)
    assert files == [] and counts["presentations"] == 0


def test_delete_form_without_csrf_refused(app: Flask, client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    login(client, "speaker@example.org")
    before = snapshot(app)
    url = f"/events/{slides_stage.event.slug}/sessions/{slides_stage.session.id}/slides/{body['id']}/delete"
    assert client.post(url).status_code == 400
    assert snapshot(app) == before


def test_pdf_preview_rendered_in_background_and_shown(client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    assert body["thumbnail"] == "pending"
    presentation = wait_for_thumbnail(body["id"])
    assert presentation.thumbnail_state == "ready"
    response = fetch(client, f"/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}/thumbnail",
                          headers=bearer(slides_stage.speaker))
    assert response.status_code == 200 and response.mimetype == "image/png"
    from PIL import Image

    with Image.open(io.BytesIO(response.data)) as image:
        assert image.format == "PNG" and image.width <= 480 and image.height <= 360 and image.width > 100
    login(client, "speaker@example.org")
    page = fetch(client, f"/events/{slides_stage.event.slug}/sessions/{slides_stage.session.id}/slides")
    assert f"/presentations/{body['id']}/thumbnail" in page.get_data(as_text=True)


def test_broken_pdf_preview_fails_quietly(client, slides_stage) -> None:
    buffer = io.BytesIO()
    pikepdf.new().save(buffer)  # a PDF that opens, but has no page to show
    body = put_slides(client, slides_stage, data=buffer.getvalue())
    assert wait_for_thumbnail(body["id"]).thumbnail_state == "failed"


def test_office_files_get_no_preview(client, slides_stage) -> None:
    body = put_slides(client, slides_stage, filename="deck.pptx", data=pptx_bytes())
    assert body["thumbnail"] == "none"


def test_presentations_page_and_archive_list_only_published(client, slides_stage) -> None:
    put_slides(client, slides_stage, filename="fertig.pdf", data=pdf_bytes("fertig"))
    private = put_slides(client, slides_stage, filename="geheim.pdf", data=pdf_bytes("geheim"),
                         session=slides_stage.other_session)
    end_session(slides_stage.session)
    page = fetch(client, f"/events/{slides_stage.event.slug}/presentations").get_data(as_text=True)
    assert "fertig.pdf" in page and "geheim.pdf" not in page
    response = fetch(client, f"/events/{slides_stage.event.slug}/presentations/archive.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
        assert len(names) == 1 and names[0].endswith("/fertig.pdf")
        assert archive.read(names[0]) == pdf_bytes("fertig")
    assert private["visibility"] == "private"


def test_archive_without_published_slides_404(client, slides_stage) -> None:
    put_slides(client, slides_stage)
    assert fetch(client, f"/events/{slides_stage.event.slug}/presentations/archive.zip").status_code == 404


def test_export_attachments_list_published_slides_with_absolute_urls(app: Flask, client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    put_slides(client, slides_stage, session=slides_stage.other_session)
    end_session(slides_stage.session)
    with app.test_request_context("/", headers={"Host": "evil.example", "Accept-Language": "en"}):
        results = session_attachments.send(app, event=slides_stage.event)
    merged: dict = {}
    for _receiver, value in results:
        merged.update(value or {})
    assert list(merged) == [slides_stage.session.id]
    assert merged[slides_stage.session.id] == [{
        "title": "Slides: Folien.pdf", "type": "slides",
        "url": f"http://localhost/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}/download"}]


def test_dashboard_lists_missing_and_reminder_goes_to_outbox(client, slides_stage) -> None:
    put_slides(client, slides_stage)
    login(client, "orga@example.org")
    url = f"/manage/events/{slides_stage.event.slug}/presentations"
    page = fetch(client, url).get_data(as_text=True)
    assert "1 of 2 sessions still lack slides." in page
    token = csrf_token(client, url)
    remind = f"/manage/events/{slides_stage.event.slug}/presentations/remind/{slides_stage.other_session.id}"
    assert client.post(remind).status_code == 400  # no CSRF token
    assert db.session.query(OutboxMessage).count() == 0
    assert client.post(remind, data={"csrf_token": token}).status_code == 303
    message = db.session.scalars(select(OutboxMessage)).one()
    assert message.recipient == "other@example.org"
    assert "KI im Mittelstand" in message.subject
    assert f"http://localhost/events/{slides_stage.event.slug}/sessions/{slides_stage.other_session.id}/slides" \
        in message.body


@pytest.mark.parametrize("who", ["attendee", "speaker"])
def test_dashboard_forbidden_for_non_organisers(client, slides_stage, who) -> None:
    login(client, getattr(slides_stage, who).email)
    assert fetch(client, f"/manage/events/{slides_stage.event.slug}/presentations").status_code == 403


def test_session_partial_shows_upload_form_only_to_uploaders(client, slides_stage) -> None:
    url = f"/events/{slides_stage.event.slug}/sessions/{slides_stage.session.id}/slides"
    login(client, "attendee@example.org")
    assert "upload-form" not in fetch(client, url).get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, url)})
    login(client, "speaker@example.org")
    html = fetch(client, url).get_data(as_text=True)
    assert "upload-form" in html and "presentations.js" in html and "<progress" in html


def test_published_slides_of_unpublished_event_stay_hidden(app: Flask, client, slides_stage) -> None:
    body = put_slides(client, slides_stage)
    end_session(slides_stage.session)
    slides_stage.event.is_published = False
    commit()
    assert fetch(client, download_url(body)).status_code == 404
    assert utcnow() > PAST


def test_agenda_session_page_includes_slides_partial(client, slides_stage) -> None:
    if "agenda.session_page" not in client.application.view_functions:
        pytest.skip("the agenda has no session page in this build")
    from conference.agenda.releases import ensure_demo_release

    body = put_slides(client, slides_stage)
    end_session(slides_stage.session)
    end_session(slides_stage.other_session, offset=2)
    slides_stage.event.start_date = slides_stage.event.end_date = PAST.date()
    commit()
    ensure_demo_release(slides_stage.event)
    commit()
    response = fetch(client, f"/events/{slides_stage.event.slug}/sessions/{slides_stage.session.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"/presentations/{body['id']}/download" in html


def publish_future_agenda(stage) -> None:
    """Release the stage's agenda: both talks on the FUTURE day, one after the other."""
    for slot in stage.other_session.slots:
        slot.start_at, slot.end_at = slot.start_at + timedelta(hours=1), slot.end_at + timedelta(hours=1)
    stage.event.start_date = stage.event.end_date = FUTURE.date()
    commit()
    record_release(stage.event)


def test_anonymous_session_page_slides_panel_cached_and_dropped_on_change(app: Flask, client, slides_stage) -> None:
    """Anonymous visitors get the slides panel from a short-lived cache; publishing, hiding and deleting drop it
    at once, logged-in visitors always get it fresh."""
    if "agenda.session_page" not in client.application.view_functions:
        pytest.skip("the agenda has no session page in this build")
    from conference.agenda import pagecache
    publish_future_agenda(slides_stage)
    page = f"/events/{slides_stage.event.slug}/sessions/{slides_stage.session.id}"
    # The session has not ended: private. (Not a PDF: no background preview that drops the panel meanwhile.)
    body = put_slides(client, slides_stage, filename="deck.pptx", data=pptx_bytes())
    link = f"/presentations/{body['id']}/download"
    url = f"/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}"
    organiser = bearer(slides_stage.organiser)
    assert link not in fetch(client, page).get_data(as_text=True)

    # A change that no service announces (here: straight into the database) waits for the time limit ...
    presentation = db.session.get(Presentation, body["id"])
    presentation.visibility_mode = "published"
    db.session.commit()
    assert link not in fetch(client, page).get_data(as_text=True)
    assert len(pagecache.panel_cache(app)) == 1
    pagecache.panel_cache(app).ttl = 0  # ... e.g. the automatic publication when the session ends
    assert link in fetch(client, page).get_data(as_text=True)
    pagecache.panel_cache(app).ttl = pagecache.PANELS_TTL
    presentation.visibility_mode = "automatic"
    db.session.commit()
    pagecache.forget_panels(slides_stage.session.id)
    assert link not in fetch(client, page).get_data(as_text=True)

    # ... while the services drop the cached panel with their commit.
    assert client.patch(url, json={"visibility_mode": "published"}, headers=organiser).status_code == 200
    assert link in fetch(client, page).get_data(as_text=True)
    assert client.patch(url, json={"visibility_mode": "hidden"}, headers=organiser).status_code == 200
    assert link not in fetch(client, page).get_data(as_text=True)
    login(client, "speaker@example.org")  # the session's speaker still sees the hidden deck and the upload
    html = fetch(client, page).get_data(as_text=True)
    assert link in html and "upload-form" in html
    client.post("/logout", data={"csrf_token": csrf_token(client, page)})
    assert client.patch(url, json={"visibility_mode": "published"}, headers=organiser).status_code == 200
    assert link in fetch(client, page).get_data(as_text=True)
    assert client.delete(url, headers=organiser).status_code == 204
    assert link not in fetch(client, page).get_data(as_text=True)
    second = put_slides(client, slides_stage, filename="v2.pptx", data=pptx_bytes())
    assert client.patch(f"/api/v1/sessions/{slides_stage.session.id}/presentations/{second['id']}",
                        json={"visibility_mode": "published"}, headers=organiser).status_code == 200
    html = fetch(client, page).get_data(as_text=True)
    assert f"/presentations/{second['id']}/download" in html and "upload-form" not in html


def test_anonymous_slides_panel_shows_the_finished_preview(app: Flask, client, slides_stage) -> None:
    if "agenda.session_page" not in client.application.view_functions:
        pytest.skip("the agenda has no session page in this build")
    publish_future_agenda(slides_stage)
    page = f"/events/{slides_stage.event.slug}/sessions/{slides_stage.session.id}"
    body = put_slides(client, slides_stage)
    client.patch(f"/api/v1/sessions/{slides_stage.session.id}/presentations/{body['id']}",
                 json={"visibility_mode": "published"}, headers=bearer(slides_stage.organiser))
    first = fetch(client, page).get_data(as_text=True)  # cached while the preview may still be pending
    assert f"/presentations/{body['id']}/download" in first
    assert wait_for_thumbnail(body["id"]).thumbnail_state == "ready"
    assert f"/presentations/{body['id']}/thumbnail" in fetch(client, page).get_data(as_text=True)
