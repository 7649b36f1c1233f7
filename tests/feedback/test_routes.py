"""Feedback and documentation routes: permission cells, CSRF, limits, anonymity, draft leaks, hidden questions."""

from __future__ import annotations

import pytest

from conference.extensions import db
from conference.feedback import documentation, services
from conference.feedback.models import EventDocumentation, SessionFeedback
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import csrf_token, login

PRINCIPALS = ("anonymous", "outsider", "attendee", "speaker", "organiser_b", "organiser")


@pytest.fixture
def app_settings(tmp_path):
    return settings_for_tests(tmp_path, FEEDBACK_LIMIT=(3, 3600))


def _client(app, fworld, who):
    client = app.test_client()
    if who != "anonymous":
        login(client, fworld.users[who].email)
    return client


def _refused(response) -> bool:
    return response.status_code in (401, 403, 404) or (
        response.status_code in (302, 303) and "/login" in response.headers.get("Location", ""))


@pytest.mark.parametrize("who", PRINCIPALS)
def test_feedback_post_permissions(app, fworld, who) -> None:
    client = _client(app, fworld, who)
    url = f"/events/doc-event/sessions/{fworld.started.id}/feedback"
    token = csrf_token(client, "/events/doc-event/")
    response = client.post(url, data={"csrf_token": token, "rating": "4", "comment": "ok"})
    if who in ("attendee", "speaker", "organiser"):
        assert response.status_code == 303
        assert db.session.query(SessionFeedback).count() == 1
    else:
        assert _refused(response), response.status_code
        assert db.session.query(SessionFeedback).count() == 0


def test_feedback_form_for_future_and_draft_sessions(app, fworld) -> None:
    client = _client(app, fworld, "attendee")
    token = csrf_token(client, "/events/doc-event/")
    future = client.post(f"/events/doc-event/sessions/{fworld.future.id}/feedback",
                         data={"csrf_token": token, "rating": "4"})
    assert future.status_code == 409
    assert client.get(f"/events/doc-event/sessions/{fworld.future.id}/feedback").status_code == 200
    for method in ("get", "post"):
        response = getattr(client, method)(f"/events/doc-event/sessions/{fworld.draft.id}/feedback",
                                           data={"csrf_token": token, "rating": "4"})
        assert response.status_code == 404 and b"Geheimer Entwurf" not in response.data


def test_feedback_needs_csrf_and_refuses_garbage(app, fworld) -> None:
    client = _client(app, fworld, "attendee")
    url = f"/events/doc-event/sessions/{fworld.started.id}/feedback"
    assert client.post(url, data={"rating": "4"}).status_code == 400
    token = csrf_token(client, url)
    for data in ({"rating": "9"}, {"rating": "<b>"}, {}, {"rating": "3", "comment": "x" * 1001},
                 {"rating": "\x00"}, {"rating": "1" * 400}):
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 400, data
    assert db.session.query(SessionFeedback).count() == 0
    big = client.post(url, data={"csrf_token": token, "rating": "3", "comment": "x" * (2 * 1024 * 1024)})
    assert big.status_code == 413


def test_feedback_rate_limited(app, fworld) -> None:
    client = _client(app, fworld, "attendee")
    url = f"/events/doc-event/sessions/{fworld.started.id}/feedback"
    token = csrf_token(client, url)
    codes = [client.post(url, data={"csrf_token": token, "rating": str(n)}).status_code for n in (1, 2, 3, 4)]
    assert codes == [303, 303, 303, 429]
    assert db.session.query(SessionFeedback).one().rating == 3


def _rate(fworld) -> None:
    services.give_feedback(fworld.event, fworld.started.id, user=fworld.users["attendee"], rating=5,
                           comment="<script>alert('x')</script>Toll", shows_name=True)
    services.give_feedback(fworld.event, fworld.started.id, user=fworld.users["attendee2"], rating=2,
                           comment="Zu schnell", shows_name=False)
    db.session.commit()


def test_speaker_page_anonymous_feedback(app, fworld) -> None:
    _rate(fworld)
    html = _client(app, fworld, "speaker").get("/events/doc-event/speakers/me/feedback").get_data(as_text=True)
    assert "Zu schnell" in html and "3.5" in html and "&lt;script&gt;" in html and "<script>alert" not in html
    assert "Anna" not in html and "Bruno" not in html and "att@example.org" not in html
    assert "Registered for the event: 4" in html


@pytest.mark.parametrize(("who", "expected"), [("anonymous", 302), ("outsider", 404), ("attendee", 404),
                                               ("organiser_b", 404), ("speaker", 200)])
def test_speaker_page_permissions(app, fworld, who, expected) -> None:
    _rate(fworld)
    response = _client(app, fworld, who).get("/events/doc-event/speakers/me/feedback")
    assert response.status_code == expected
    if expected != 200:
        assert b"Zu schnell" not in response.data


@pytest.mark.parametrize("url", ["/manage/events/doc-event/feedback", "/manage/events/doc-event/documentation"])
@pytest.mark.parametrize("who", PRINCIPALS)
def test_manage_pages_permissions(app, fworld, url, who) -> None:
    _rate(fworld)
    response = _client(app, fworld, who).get(url)
    if who == "organiser":
        assert response.status_code == 200
    else:
        assert _refused(response) and b"Zu schnell" not in response.data


def test_organiser_sees_names_only_when_ticked(app, fworld) -> None:
    _rate(fworld)
    html = _client(app, fworld, "organiser").get("/manage/events/doc-event/feedback").get_data(as_text=True)
    assert "Anna Attendee" in html and "Bruno Beispiel" not in html and "Zu schnell" in html


def test_manage_documentation_posts(app, fworld) -> None:
    client = _client(app, fworld, "organiser")
    url = "/manage/events/doc-event/documentation"
    assert client.post(url, data={"is_published": "y"}).status_code == 400  # no CSRF token
    token = csrf_token(client, url)
    assert client.post(url, data={"csrf_token": token, "survey_url": "javascript:alert(1)"}).status_code == 400
    assert db.session.get(EventDocumentation, fworld.event.id) is None
    response = client.post(url, data={"csrf_token": token, "is_published": "y", "shows_questions": "y",
                                      "survey_url": "https://umfrage.example.org/f"})
    assert response.status_code == 303
    summary_url = f"/manage/events/doc-event/documentation/sessions/{fworld.started.id}"
    assert client.post(summary_url, data={"text": "x"}).status_code == 400  # no CSRF token
    assert client.post(summary_url, data={"csrf_token": token, "text": "x" * 5001}).status_code == 400
    assert client.post(summary_url, data={"csrf_token": token, "text": "Kurz"}).status_code == 303
    draft_url = f"/manage/events/doc-event/documentation/sessions/{fworld.draft.id}"
    assert client.post(draft_url, data={"csrf_token": token, "text": "x"}).status_code == 404
    assert documentation.summaries_of(fworld.event) == {fworld.started.id: "Kurz"}


@pytest.mark.parametrize("who", PRINCIPALS)
def test_summary_post_permissions(app, fworld, who) -> None:
    client = _client(app, fworld, who)
    token = csrf_token(client, "/events/doc-event/")
    response = client.post(f"/manage/events/doc-event/documentation/sessions/{fworld.started.id}",
                           data={"csrf_token": token, "text": "Zusammenfassung"})
    if who == "organiser":
        assert response.status_code == 303
    else:
        assert _refused(response)
        assert documentation.summaries_of(fworld.event) == {}


def _publish(fworld, **figures) -> None:
    documentation.update_documentation(fworld.event, is_published=True, survey_url="https://umfrage.example.org/f",
                                       **figures)
    db.session.commit()


@pytest.mark.parametrize("who", PRINCIPALS)
def test_documentation_unpublished_is_404_except_organisers_preview(app, fworld, who) -> None:
    response = _client(app, fworld, who).get("/events/doc-event/documentation")
    if who == "organiser":
        assert response.status_code == 200 and b"Preview" in response.data
    else:
        assert response.status_code == 404


def test_documentation_page_content(app, fworld) -> None:
    documentation.save_summary(fworld.event, fworld.started.id,
                               text="**Wichtig** <script>alert(1)</script> [x](javascript:alert(2))")
    _publish(fworld, shows_registered=True, shows_questions=True)
    html = app.test_client().get("/events/doc-event/documentation").get_data(as_text=True)
    assert "Daten als Infrastruktur" in html and "<strong>Wichtig</strong>" in html
    assert "<script>alert(1)" not in html and "javascript:" not in html
    assert "Wie offen sind die Daten?" in html and "Ganz offen." in html
    assert "Anna Attendee" not in html  # questions without their authors
    # Draft leak: neither the draft session nor its question; hidden and unanswered questions neither.
    for secret in ("Geheimer Entwurf", "Frage im Entwurf", "Antwort im Entwurf", "Versteckte Frage",
                   "Versteckte Antwort", "Unbeantwortete Frage"):
        assert secret not in html, secret
    assert "<strong>4</strong> participants registered" in html and "<strong>3</strong> questions asked" in html
    assert "sessions</li>" not in html
    assert "https://video.example.org/rec-1" in html  # open registration: links are public
    assert "https://umfrage.example.org/f" in html  # the event ended today? shown once it is past


def test_documentation_members_only_recording(app, fworld) -> None:
    fworld.event.link_visibility = "members"
    db.session.commit()
    _publish(fworld)
    assert b"rec-1" not in app.test_client().get("/events/doc-event/documentation").data
    assert b"rec-1" in _client(app, fworld, "attendee").get("/events/doc-event/documentation").data


def test_documentation_of_unpublished_event_is_404(app, fworld) -> None:
    _publish(fworld)
    fworld.event.is_published = False
    db.session.commit()
    assert app.test_client().get("/events/doc-event/documentation").status_code == 404


def test_event_page_links_after_the_day(app, fworld) -> None:
    _publish(fworld)
    html = app.test_client().get("/events/doc-event/").get_data(as_text=True)
    assert "/events/doc-event/documentation" in html and "https://umfrage.example.org/f" in html


def test_survey_link_waits_for_the_end_of_the_event(app, fworld) -> None:
    from datetime import date, timedelta

    _publish(fworld)
    fworld.event.end_date = date.today() + timedelta(days=1)
    db.session.commit()
    for url in ("/events/doc-event/", "/events/doc-event/documentation"):
        assert b"umfrage.example.org" not in app.test_client().get(url).data


def test_session_page_offers_feedback_to_members_only(app, fworld) -> None:
    url = f"/events/doc-event/sessions/{fworld.started.id}"
    feedback = f"/events/doc-event/sessions/{fworld.started.id}/feedback".encode()
    assert feedback in _client(app, fworld, "attendee").get(url).data
    assert feedback not in app.test_client().get(url).data
    assert feedback not in _client(app, fworld, "outsider").get(url).data


def test_feedback_in_account_data_and_deleted_with_account(app, fworld) -> None:
    _rate(fworld)
    client = _client(app, fworld, "attendee2")
    data = client.get("/account/data.json").get_json()
    assert data["session_feedback"][0]["comment"] == "Zu schnell"


def test_account_deletion_removes_answers_and_feedback(app, fworld) -> None:
    from conference.people import services as people
    from conference.people.models import RegistrationAnswer
    from tests.fixtures.accounts import PASSWORD

    people.update_settings(fworld.event, asks_organisation=True, asks_sector=False, sectors="A",
                           asks_listing_consent=True, has_public_list=True)
    people.save_answers(fworld.event, user=fworld.users["attendee"], organisation="Amt", is_listed=True)
    _rate(fworld)
    client = _client(app, fworld, "attendee")
    data = client.get("/account/data.json").get_json()
    assert data["registration_answers"][0]["organisation"] == "Amt"
    assert data["session_feedback"][0]["rating"] == 5
    response = client.post("/account/delete", data={"csrf_token": csrf_token(client, "/account"),
                                                    "delete_password": PASSWORD})
    assert response.status_code in (302, 303)
    user_id = fworld.users["attendee"].id
    assert db.session.query(RegistrationAnswer).filter_by(user_id=user_id).count() == 0
    assert db.session.query(SessionFeedback).filter_by(user_id=user_id).count() == 0
    assert db.session.query(SessionFeedback).count() == 1  # the other person's stays
    assert b"Amt" not in app.test_client().get("/events/doc-event/participants").data
