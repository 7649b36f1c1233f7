"""The session page as a stage: player and chat first while the session is live (or about to start), the
details first before and after; members-only links stay members-only; speaker photos in the session's list."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image

from conference.agenda import services
from conference.core.db import utcnow
from conference.core.permissions import Role
from conference.extensions import db
from conference.speakers import services as speaker_services
from tests.fixtures.accounts import login

URL = "https://www.youtube.com/watch?v=abcDEF12_-x"


@pytest.fixture
def today(create_event, create_room, create_speaker, publish):
    """An event of today with one session live now, one in ten minutes and one that ended an hour ago."""
    now = utcnow()
    event = create_event("heute-live", start=(now - timedelta(days=1)).date(), end=(now + timedelta(days=1)).date(),
                         timezone="UTC")
    room = create_room(event, "Bühne", stream_kind="youtube", stream_url=URL)
    speaker = create_speaker(event, "Erika Muster")
    sessions = {}
    for name, start in (("live", -5), ("soon", 70), ("over", -180), ("later", 240)):
        session = services.create_session(event, title=f"Vortrag {name}", abstract="Worum es geht.",
                                          speakers=[(speaker, "speaker")], actor=None)
        services.schedule_session(session, room=room, start_at=now + timedelta(minutes=start),
                                  end_at=now + timedelta(minutes=start + 60), actor=None)
        sessions[name] = session
    publish(event)
    return event, sessions, speaker


def page(client, event, session) -> str:
    response = client.get(f"/events/{event.slug}/sessions/{session.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_live_session_page_is_a_stage_player_before_details(client, today) -> None:
    event, sessions, _speaker = today
    for _attempt in range(2):  # the anonymous page comes from the release cache the second time
        html = page(client, event, sessions["live"])
        assert 'class="stage"' in html and 'data-stage-side' in html
        assert html.index('class="stage-main"') < html.index("data-embed-url=") < html.index('data-stage-side') \
            < html.index('class="session-page')
        assert html.count("<h1") == 1 and html.index("<h1") < html.index('class="stage-main"')


@pytest.mark.parametrize("name", ["over", "later"])
def test_session_page_before_or_after_shows_details_first(client, today, name) -> None:
    event, sessions, _speaker = today
    html = page(client, event, sessions[name])
    assert 'class="stage"' not in html
    assert html.index("Worum es geht.") < html.index("data-embed-url=")


def test_session_about_to_start_is_on_stage(app, client, today, publish) -> None:
    event, sessions, _speaker = today
    live, soon = sessions["live"].slots[0], sessions["soon"].slots[0]
    services.move_slot(live, room=live.room, start_at=utcnow() - timedelta(minutes=80),
                       end_at=utcnow() - timedelta(minutes=20), actor=None)
    services.move_slot(soon, room=soon.room, start_at=utcnow() + timedelta(minutes=10),
                       end_at=utcnow() + timedelta(minutes=70), actor=None)
    db.session.commit()
    publish(event, "1.1")
    assert 'class="stage"' in page(client, event, sessions["soon"])


def test_members_only_links_stay_members_only_on_stage(client, today, person) -> None:
    event, sessions, _speaker = today
    event.registration_mode = "code"  # "auto" link visibility: members only
    db.session.commit()
    html = page(client, event, sessions["live"])
    assert 'class="stage"' in html
    assert "youtube" not in html and "stream-members-only" in html
    login(client, person(event, Role.ATTENDEE).email)
    html = page(client, event, sessions["live"])
    assert 'data-embed-url="https://www.youtube-nocookie.com/embed/abcDEF12_-x"' in html


def test_session_page_shows_speaker_photo_or_initials(client, today, app) -> None:
    event, sessions, speaker = today
    html = page(client, event, sessions["later"])
    assert '<span class="speaker-avatar speaker-initials" aria-hidden="true">EM</span>' in html
    out = io.BytesIO()
    Image.new("RGB", (80, 80), (10, 90, 40)).save(out, format="PNG")
    out.seek(0)
    speaker.photo_filename = speaker_services.store_photo(out)
    db.session.commit()
    html = page(client, event, sessions["later"])  # a new photo shows although the release is the same
    assert f'src="/events/{event.slug}/speakers/{speaker.id}/photo" alt="" width="48"' in html


def test_recording_link_after_the_session_only(client, today, publish) -> None:
    event, sessions, _speaker = today
    for session in sessions.values():
        services.update_session(session, recording_url="https://media.example.org/aufzeichnung", actor=None)
    db.session.commit()
    publish(event, "1.1")
    html = page(client, event, sessions["over"])
    assert 'href="https://media.example.org/aufzeichnung" rel="noopener noreferrer" target="_blank"' in html
    for name in ("live", "later"):
        assert "media.example.org" not in page(client, event, sessions[name]), name


@pytest.mark.parametrize("url", ["http://media.example.org/x", "javascript:alert(1)", "https://x.example/a b"])
def test_recording_link_must_be_https(today, url) -> None:
    from conference.core.errors import ValidationFailed

    _event, sessions, _speaker = today
    with pytest.raises(ValidationFailed) as error:
        services.update_session(sessions["over"], recording_url=url, actor=None)
    assert error.value.field == "recording_url"
