"""The schedule import pages: permissions, upload -> preview -> apply, stale previews, limits, garbage."""

from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from conference.agenda.models import ConferenceSession
from conference.agenda.releases import latest_release
from conference.core import after_commit
from conference.core.permissions import Role
from conference.extensions import db
from tests.fixtures.accounts import csrf_token, login

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pretalx"
PAGE = "/manage/events/{slug}/agenda/import"


@pytest.fixture
def event(create_event):
    return create_event("import-page", end=date(2027, 3, 19))


@pytest.fixture
def organiser(event, person, client):
    user = person(event, Role.ORGANISER, email="orga@example.org")
    login(client, user.email)
    return user


def titles(event) -> list[str]:
    return sorted(db.session.scalars(select(ConferenceSession.title).where(ConferenceSession.event_id == event.id)))


def upload(client, slug: str, data: bytes, *, remove_missing: bool = False, token: str | None = None):
    form = {"csrf_token": token or csrf_token(client, PAGE.format(slug=slug)),
            "file": (io.BytesIO(data), "schedule.xml")}
    if remove_missing:
        form["remove_missing"] = "1"
    return client.post(PAGE.format(slug=slug), data=form, content_type="multipart/form-data")


def apply(client, slug: str, html: str):
    token = re.search(r'name="token" value="([^"]+)"', html)
    assert token, html
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    return client.post(PAGE.format(slug=slug) + "/apply", data={"token": token.group(1), "csrf_token": csrf.group(1)})


def test_upload_preview_apply(client, event, organiser) -> None:
    page = client.get(PAGE.format(slug=event.slug))
    assert page.status_code == 200 and "Import schedule" in page.get_data(as_text=True)
    preview = upload(client, event.slug, (FIXTURES / "schedule-v1.0.xml").read_bytes())
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "Hands-on: Barrierefreie Formulare" in html and "Großer Saal" in html
    assert "Eröffnung: Verwaltung &lt;digital&gt; &amp; &#34;offen&#34;" in html  # escaped
    assert titles(event) == []  # a preview writes nothing
    response = apply(client, event.slug, html)
    assert response.status_code == 303
    assert len(titles(event)) == 5
    assert latest_release(event) is None
    # The same preview cannot be applied twice.
    again = apply(client, event.slug, html)
    assert again.status_code == 404 and "expired" in again.get_data(as_text=True)


def test_apply_refused_when_agenda_changed_after_preview(client, event, organiser, create_room) -> None:
    html = upload(client, event.slug, (FIXTURES / "schedule-v1.0.xml").read_bytes()).get_data(as_text=True)
    create_room(event, "Neuer Raum")  # someone edits the agenda meanwhile
    response = apply(client, event.slug, html)
    assert response.status_code == 409
    assert "changed after the preview" in response.get_data(as_text=True)
    assert titles(event) == []


def test_apply_needs_csrf(client, event, organiser) -> None:
    html = upload(client, event.slug, (FIXTURES / "schedule-v1.0.xml").read_bytes()).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    response = client.post(PAGE.format(slug=event.slug) + "/apply", data={"token": token})
    assert response.status_code == 400
    assert titles(event) == []


def test_upload_needs_csrf(client, event, organiser) -> None:
    response = client.post(PAGE.format(slug=event.slug), content_type="multipart/form-data",
                           data={"file": (io.BytesIO((FIXTURES / "schedule-v1.0.xml").read_bytes()), "s.xml")})
    assert response.status_code == 400


def test_reimport_with_removal_via_pages(client, event, organiser) -> None:
    apply(client, event.slug, upload(client, event.slug, (FIXTURES / "schedule-v1.0.xml").read_bytes())
          .get_data(as_text=True))
    html = upload(client, event.slug, (FIXTURES / "schedule-v1.1.xml").read_bytes(),
                  remove_missing=True).get_data(as_text=True)
    assert "Open Source in der Kommune (aktualisiert)" in html and "change-delete" in html
    assert apply(client, event.slug, html).status_code == 303
    assert "Hands-on: Barrierefreie Formulare" not in titles(event)
    assert "Open Source in der Kommune (aktualisiert)" in titles(event)
    assert len(titles(event)) == 4


@pytest.mark.parametrize("data, message", [
    (b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><schedule>&x;</schedule>', "declares a DTD"),
    (b"\x00\xff garbage", "not well-formed XML"),
    (b"<schedule><day>", "not well-formed XML"),
    (b"<rss/>", "the root element is &lt;rss&gt;"),
])
def test_garbage_gets_400_with_message(client, event, organiser, data, message) -> None:
    response = upload(client, event.slug, data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert titles(event) == []


def test_ten_megabytes_refused_with_413_and_message(client, event, organiser) -> None:
    # The multipart body built by hand (bytes in memory: the test client would spool 10 MB to a temporary file).
    token = csrf_token(client, PAGE.format(slug=event.slug))
    body = (f'--b0undary\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.xml"\r\n'
            'Content-Type: application/xml\r\n\r\n').encode() + b"<schedule>" + b" " * (10 * 1024 * 1024) + \
        b"</schedule>\r\n--b0undary--\r\n"
    response = client.post(PAGE.format(slug=event.slug), data=body,
                           content_type="multipart/form-data; boundary=b0undary")
    assert response.status_code == 413
    assert "at most" in response.get_data(as_text=True)


def test_file_over_setting_but_under_body_limit_refused_with_message(app, client, event, organiser) -> None:
    app.config["SCHEDULE_IMPORT_MAX_BYTES"] = 2000
    response = upload(client, event.slug, (FIXTURES / "schedule-v1.0.xml").read_bytes())
    assert response.status_code in (400, 413)
    assert "at most" in response.get_data(as_text=True)


def test_missing_file_400(client, event, organiser) -> None:
    response = client.post(PAGE.format(slug=event.slug), content_type="multipart/form-data",
                           data={"csrf_token": csrf_token(client, PAGE.format(slug=event.slug))})
    assert response.status_code == 400 and "Choose a schedule.xml" in response.get_data(as_text=True)


def test_anonymous_redirected_to_login(client, event) -> None:
    response = client.get(PAGE.format(slug=event.slug))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.post(PAGE.format(slug=event.slug) + "/apply", data={"token": "x"})
    assert response.status_code in (302, 400)
    assert titles(event) == []


@pytest.mark.parametrize("role", [Role.ATTENDEE, Role.SPEAKER, Role.MODERATOR])
def test_members_without_agenda_right_get_403(client, event, person, role) -> None:
    login(client, person(event, role, email=f"{role}@example.org").email)
    assert client.get(PAGE.format(slug=event.slug)).status_code == 403
    token = csrf_token(client, f"/events/{event.slug}/")
    response = client.post(PAGE.format(slug=event.slug), content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO((FIXTURES / "schedule-v1.0.xml").read_bytes()), "s.xml")})
    assert response.status_code == 403
    assert titles(event) == []


def test_organiser_of_another_event_gets_403_and_cannot_use_a_foreign_preview(client, event, organiser,
                                                                              create_event, person, app) -> None:
    html = upload(client, event.slug, (FIXTURES / "schedule-v1.0.xml").read_bytes()).get_data(as_text=True)
    other = create_event("other-event", end=date(2027, 3, 19))
    client.post("/logout", data={"csrf_token": csrf_token(client, f"/events/{event.slug}/")})
    login(client, person(other, Role.ORGANISER, email="other-orga@example.org").email)
    assert client.get(PAGE.format(slug=event.slug)).status_code == 403
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    csrf = csrf_token(client, PAGE.format(slug=other.slug))
    assert client.post(PAGE.format(slug=event.slug) + "/apply",
                       data={"token": token, "csrf_token": csrf}).status_code == 403
    # Nor through their own event: the preview belongs to another person and event.
    response = client.post(PAGE.format(slug=other.slug) + "/apply", data={"token": token, "csrf_token": csrf})
    assert response.status_code == 404
    assert titles(event) == [] and titles(other) == []
    after_commit.commit()


@pytest.mark.parametrize("token", ["../../secret_key", "", "x" * 43 + "/", "A" * 43, "ä" * 43])
def test_garbage_preview_tokens_are_404_not_5xx(client, event, organiser, token) -> None:
    csrf = csrf_token(client, PAGE.format(slug=event.slug))
    response = client.post(PAGE.format(slug=event.slug) + "/apply", data={"token": token, "csrf_token": csrf})
    assert response.status_code == 404
    assert "expired or does not exist" in response.get_data(as_text=True)
