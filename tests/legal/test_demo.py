"""The demo conference shows example legal pages, and its invented people are not asked to accept them."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import func, select

from conference.auth.models import User
from conference.demo import DEMO_PASSWORD, DEMO_SLUG, attendee_email, load_demo
from conference.extensions import db
from conference.legal import services
from conference.legal.models import LegalText
from tests.fixtures.accounts import login


def test_demo_has_legal_pages_and_asks_only_real_accounts(client: FlaskClient,
                                                          create_user: Callable[..., User]) -> None:
    load_demo(attendees=3)
    load_demo(attendees=4)  # idempotent: no second version, the new attendee's consent recorded too
    assert db.session.scalar(select(func.count()).select_from(LegalText)) == 3
    impressum = client.get(f"/events/{DEMO_SLUG}/impressum").get_data(as_text=True)
    assert "IT-Cluster Revier Digital e.V. (Beispiel)" in impressum
    privacy = client.get(f"/events/{DEMO_SLUG}/datenschutz").get_data(as_text=True)
    assert "Welche Daten wir verarbeiten" in privacy and "This event has no page of its own" in privacy
    assert "Revier Digital Plattform GmbH" in client.get("/impressum").get_data(as_text=True)
    demo_ids = db.session.scalars(select(User.id).where(User.email.like("%@demo.invalid"))).all()
    assert len(demo_ids) > 20 and all(services.pending_privacy_notice(uid) is None for uid in demo_ids)
    login(client, attendee_email(4), DEMO_PASSWORD)
    assert client.get(f"/events/{DEMO_SLUG}/").status_code == 200  # straight into the conference
    stranger = create_user("echt@example.org")
    assert services.pending_privacy_notice(stranger.id) is not None
