"""The reminder pass runs in the background of the real server under eventlet and gevent."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from conference import create_app
from conference.agenda.models import ConferenceSession, TimetableSlot
from conference.agenda.personal import star_session
from conference.auth.models import User
from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.mail import OutboxMessage
from conference.events.models import EventMembership
from conference.extensions import db
from conference.mails import services
from tests.fixtures.agenda import record_release
from tests.support.server import run_cli, running_server, server_env


@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_reminder_pass_queues_a_due_reminder_on_the_real_server(tmp_path: Path, async_mode: str) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    run_cli(["demo", "--attendees", "2"], server_env(instance, async_mode))
    app = create_app({"INSTANCE_PATH": str(instance), "EXTERNAL_URL": "http://localhost", "SECRET_KEY": "x",
                      "ASYNC_MODE": "threading"})
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "teilnehmer00001@demo.invalid"))
        assert user is not None
        membership = db.session.scalar(select(EventMembership).where(EventMembership.user_id == user.id))
        event = membership.event
        slot = db.session.scalar(select(TimetableSlot).join(ConferenceSession)
                                 .where(ConferenceSession.event_id == event.id).order_by(TimetableSlot.id))
        length = slot.end_at - slot.start_at
        slot.start_at = utcnow() + timedelta(minutes=10)  # due now with a 15-minute lead
        slot.end_at = slot.start_at + length
        star_session(slot.session, user=user)
        services.set_preferences(event, user=user, reminder_minutes=15, wants_slides_notice=False)
        commit()
        record_release(event)
        title = slot.session.title
        db.session.remove()
        db.engine.dispose()

    with running_server(instance, async_mode, demo_attendees=None, CONFERENCE_MAIL_REMINDER_INTERVAL="1"):
        deadline = time.monotonic() + 15
        subjects: list[str] = []
        while not subjects and time.monotonic() < deadline:
            time.sleep(0.5)
            with app.app_context():
                subjects = list(db.session.scalars(select(OutboxMessage.subject).where(
                    OutboxMessage.recipient == "teilnehmer00001@demo.invalid", OutboxMessage.subject.like("Gleich:%"))))
                db.session.remove()
        time.sleep(2)  # two more passes: still one reminder
        with app.app_context():
            count = len(db.session.scalars(select(OutboxMessage.id).where(
                OutboxMessage.subject.like("Gleich:%"))).all())
            db.session.remove()
            db.engine.dispose()
    assert subjects == [f"Gleich: {title}"[:200]]
    assert count == 1
