"""Speaker profiles, photos, invitations (signed links, claiming), the mail outbox."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select

from conference.agenda.models import SessionSpeaker
from conference.core.after_commit import commit
from conference.core.mail import OutboxMessage
from conference.events.models import EventMembership
from conference.extensions import db
from conference.speakers.models import SpeakerInvitation, SpeakerProfile
from tests.fixtures.accounts import PASSWORD, csrf_token, login
from tests.fixtures.presentations import jpeg_with_exif, png_header_only, snapshot


def fetch(client, url: str, **kwargs):
    with client.get(url, **kwargs) as response:
        response.get_data()
    return response


def edit_url(stage, profile=None) -> str:
    return f"/events/{stage.event.slug}/speakers/{(profile or stage.profile).id}/edit"


def profile_form(token: str, **overrides) -> dict:
    data = {"csrf_token": token, "name": "Sam Speaker", "academic_title": "Dr.", "position": "Forscherin",
            "organisation": "TH Revier", "bio": "Forscht zu **Daten**.", "links": "https://example.org/sam"}
    data.update(overrides)
    return data


def test_speaker_list_and_page_show_sessions_and_safe_bio(client, slides_stage, create_profile) -> None:
    profile = slides_stage.profile
    profile.bio = "Forscht zu **Daten**. <script>alert(1)</script> [x](javascript:alert(1))"
    commit()
    create_profile(slides_stage.event, name="Ohne Session")
    listing = client.get(f"/events/{slides_stage.event.slug}/speakers").get_data(as_text=True)
    assert "Sam Speaker" in listing and "Ohne Session" not in listing
    page = client.get(f"/events/{slides_stage.event.slug}/speakers/{profile.id}").get_data(as_text=True)
    assert "<strong>Daten</strong>" in page and "Daten als Infrastruktur" in page
    assert "<script>alert" not in page and "javascript:" not in page


def test_speaker_without_sessions_is_404_to_the_public(client, slides_stage, create_profile) -> None:
    hidden = create_profile(slides_stage.event, name="Noch nicht angekündigt")
    assert client.get(f"/events/{slides_stage.event.slug}/speakers/{hidden.id}").status_code == 404


def test_speaker_edits_own_profile(client, slides_stage) -> None:
    login(client, "speaker@example.org")
    token = csrf_token(client, edit_url(slides_stage))
    response = client.post(edit_url(slides_stage), data=profile_form(token))
    assert response.status_code == 303
    db.session.expire_all()
    profile = db.session.get(SpeakerProfile, slides_stage.profile.id)
    assert (profile.academic_title, profile.organisation, profile.links) == ("Dr.", "TH Revier",
                                                                             "https://example.org/sam")


@pytest.mark.parametrize("links", ["javascript:alert(1)", "data:text/html,x", "ftp://example.org/x",
                                   "https://ok.example\njavascript:alert(1)"])
def test_profile_links_only_http_and_https(client, slides_stage, links) -> None:
    login(client, "speaker@example.org")
    token = csrf_token(client, edit_url(slides_stage))
    response = client.post(edit_url(slides_stage), data=profile_form(token, links=links))
    assert response.status_code == 400
    assert "Only http and https" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(SpeakerProfile, slides_stage.profile.id).links == ""


@pytest.mark.parametrize("who", ["other@example.org", "attendee@example.org"])
def test_others_cannot_edit_a_profile(client, slides_stage, who) -> None:
    login(client, who)
    assert client.get(edit_url(slides_stage)).status_code == 404
    token = csrf_token(client, "/account")
    assert client.post(edit_url(slides_stage), data=profile_form(token, name="Gekapert")).status_code == 404
    db.session.expire_all()
    assert db.session.get(SpeakerProfile, slides_stage.profile.id).name == "Sam Speaker"


def test_profile_edit_without_csrf_refused(client, slides_stage) -> None:
    login(client, "speaker@example.org")
    response = client.post(edit_url(slides_stage), data=profile_form("", name="Ohne Token"))
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(SpeakerProfile, slides_stage.profile.id).name == "Sam Speaker"


def test_organiser_creates_and_edits_profiles(client, slides_stage) -> None:
    login(client, "orga@example.org")
    url = f"/manage/events/{slides_stage.event.slug}/speakers/new"
    token = csrf_token(client, url)
    assert client.post(url, data=profile_form(token, name="Neue Rednerin")).status_code == 303
    assert db.session.scalar(select(SpeakerProfile).where(SpeakerProfile.name == "Neue Rednerin")) is not None
    assert client.post(edit_url(slides_stage), data=profile_form(token, name="Sam S.")).status_code == 303


def test_photo_reencoded_resized_and_stripped(app: Flask, client, slides_stage) -> None:
    login(client, "speaker@example.org")
    token = csrf_token(client, edit_url(slides_stage))
    data = profile_form(token, photo=(io.BytesIO(jpeg_with_exif()), "me.jpg"))
    assert client.post(edit_url(slides_stage), data=data, content_type="multipart/form-data").status_code == 303
    db.session.expire_all()
    profile = db.session.get(SpeakerProfile, slides_stage.profile.id)
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", profile.photo_filename)
    response = fetch(client, f"/events/{slides_stage.event.slug}/speakers/{profile.id}/photo")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    with Image.open(io.BytesIO(response.data)) as image:
        assert image.format == "JPEG" and max(image.size) == 400
        assert not image.getexif() and b"secret description" not in response.data


@pytest.mark.parametrize(("payload", "message"), [
    (png_header_only(30_000, 30_000), "too many pixels"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "must be a PNG, JPEG, WebP or GIF"),
    (b"%PDF-1.4 not an image", "must be a PNG, JPEG, WebP or GIF"),
])
def test_bad_photo_refused_and_nothing_stored(app: Flask, client, slides_stage, payload, message) -> None:
    login(client, "speaker@example.org")
    token = csrf_token(client, edit_url(slides_stage))
    before = snapshot(app)
    data = profile_form(token, name="Geändert", photo=(io.BytesIO(payload), "photo.png"))
    response = client.post(edit_url(slides_stage), data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert snapshot(app) == before
    db.session.expire_all()
    assert db.session.get(SpeakerProfile, slides_stage.profile.id).name == "Sam Speaker"


def invite(client, stage, email: str = "neu@example.org", **extra) -> str:
    login(client, "orga@example.org")
    manage = f"/manage/events/{stage.event.slug}/speakers"
    token = csrf_token(client, manage)
    data = {"csrf_token": token, "session_id": stage.session.id, "speaker_id": 0, "name": "Nina Neu",
            "email": email, "role": "speaker", **extra}
    response = client.post(f"{manage}/invite", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    message = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    link = re.search(r"(\S+/invitations/\S+)", message.body).group(1)
    client.post("/logout", data={"csrf_token": csrf_token(client, manage)})
    return link


def test_invitation_mail_uses_external_url_not_host_header(app: Flask, client, slides_stage) -> None:
    link = invite(client, slides_stage)
    assert link.startswith(f"http://localhost/events/{slides_stage.event.slug}/invitations/")
    from conference.speakers.services import invite_speaker

    with app.test_request_context("/", headers={"Host": "evil.example"}):
        invite_speaker(slides_stage.event, session=slides_stage.session, email="zwei@example.org",
                       actor=slides_stage.organiser, name="Zweite")
        commit()
    body = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first().body
    assert "evil.example" not in body and "http://localhost/events/" in body


def test_invitation_register_and_claim(client, slides_stage) -> None:
    path = invite(client, slides_stage).removeprefix("http://localhost")
    page = client.get(path).get_data(as_text=True)
    assert "Create an account" in page
    token = csrf_token(client, f"/register?next={path}")
    registered = client.post("/register", data={"csrf_token": token, "name": "Nina Neu",
                                                "email": "neu@example.org", "password": PASSWORD, "next": path})
    assert registered.headers["Location"] == f"/register/sent?next={path}"
    login(client, "neu@example.org")
    assert "Please confirm your e-mail address first" in client.get(path).get_data(as_text=True)
    assert client.post(path, data={"csrf_token": csrf_token(client, path)}).status_code == 403
    # The confirmation link (mailed at registration) leads back to the invitation.
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "neu@example.org")
                              .order_by(OutboxMessage.id.desc())).first()
    confirm = re.search(r"http://localhost(/account/confirm/\S+)", mail.body).group(1)
    confirmed = client.post(confirm, data={"csrf_token": csrf_token(client, confirm)})
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == path
    accept = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert accept.status_code == 303
    profile = db.session.scalar(select(SpeakerProfile).where(SpeakerProfile.name == "Nina Neu"))
    assert profile.user.email == "neu@example.org"
    assert db.session.scalar(select(SessionSpeaker).where(SessionSpeaker.speaker_id == profile.id)).session_id \
        == slides_stage.session.id
    assert db.session.scalar(select(EventMembership.role).where(EventMembership.user_id == profile.user_id)) \
        == "speaker"


def test_invitation_only_for_the_account_of_the_invited_address(client, slides_stage) -> None:
    path = invite(client, slides_stage).removeprefix("http://localhost")
    login(client, "attendee@example.org")
    assert "but you are logged in as attendee@example.org" in client.get(path).get_data(as_text=True)
    before = snapshot(client.application)
    refused = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert refused.status_code == 403
    assert "This invitation was sent to neu@example.org" in refused.get_data(as_text=True)
    assert snapshot(client.application) == before


def test_invitation_accepted_once_and_keeps_higher_role(client, slides_stage) -> None:
    path = invite(client, slides_stage, email="orga@example.org").removeprefix("http://localhost")
    login(client, "orga@example.org")
    assert client.post(path, data={"csrf_token": csrf_token(client, path)}).status_code == 303
    role = db.session.scalar(select(EventMembership.role).where(EventMembership.user_id == slides_stage.organiser.id))
    assert role == "organiser"
    client.post("/logout", data={"csrf_token": csrf_token(client, path)})
    login(client, "attendee@example.org")
    before = snapshot(client.application)
    assert client.post(path, data={"csrf_token": csrf_token(client, "/account")}).status_code == 409
    assert snapshot(client.application) == before


def test_invitation_forged_or_expired_link_refused(client, slides_stage) -> None:
    path = invite(client, slides_stage).removeprefix("http://localhost")
    assert client.get(path[:-3] + "abc").status_code == 404
    assert client.get(f"/events/{slides_stage.event.slug}/invitations/not-a-token").status_code == 404
    invitation = db.session.scalars(select(SpeakerInvitation)).one()
    invitation.expires_at = invitation.created_at - timedelta(seconds=1)
    commit()
    login(client, "attendee@example.org")
    before = snapshot(client.application)
    assert client.get(path).status_code == 410
    assert client.post(path, data={"csrf_token": csrf_token(client, "/account")}).status_code == 410
    assert snapshot(client.application) == before


def test_invitation_accept_without_csrf_refused(client, slides_stage) -> None:
    path = invite(client, slides_stage).removeprefix("http://localhost")
    login(client, "attendee@example.org")
    before = snapshot(client.application)
    assert client.post(path).status_code == 400
    assert snapshot(client.application) == before


@pytest.mark.parametrize("who", ["speaker@example.org", "attendee@example.org"])
def test_invite_and_outbox_only_for_organisers(client, slides_stage, who) -> None:
    login(client, who)
    slug = slides_stage.event.slug
    assert client.get(f"/manage/events/{slug}/outbox").status_code == 403
    assert client.get(f"/manage/events/{slug}/speakers").status_code == 403
    token = csrf_token(client, "/account")
    response = client.post(f"/manage/events/{slug}/speakers/invite",
                           data={"csrf_token": token, "session_id": slides_stage.session.id, "speaker_id": 0,
                                 "name": "X", "email": "x@example.org", "role": "speaker"})
    assert response.status_code == 403
    assert db.session.query(SpeakerInvitation).count() == 0


def test_outbox_shows_mail_with_escaped_text_and_link(client, slides_stage) -> None:
    invite(client, slides_stage, name="<b>Nina</b>")
    login(client, "orga@example.org")
    page = client.get(f"/manage/events/{slides_stage.event.slug}/outbox").get_data(as_text=True)
    assert "&lt;b&gt;Nina&lt;/b&gt;" in page and "<b>Nina</b>" not in page
    assert re.search(r'<a href="http://localhost/events/[^"]+/invitations/[^"]+">', page)
