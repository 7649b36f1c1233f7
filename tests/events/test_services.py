"""Roles and confirmed addresses: what waits for the confirmation and what applies at once."""

from __future__ import annotations

from sqlalchemy import select

from conference.auth import registration
from conference.core.after_commit import commit
from conference.core.permissions import Role
from conference.events import services
from conference.events.models import EventMembership, PendingRole
from conference.extensions import db


def roles(event) -> dict[str, str]:
    db.session.expire_all()
    return {m.user.email: m.role for m in db.session.scalars(
        select(EventMembership).where(EventMembership.event_id == event.id))}


def test_role_for_unconfirmed_account_waits_and_applies_at_confirmation(create_event, create_user) -> None:
    event, other = create_event(), create_event()
    user = create_user("late@example.org", verified=False)
    organiser = create_user("orga@example.org")
    held = services.set_role(event, user=user, role=Role.ORGANISER, actor=organiser)
    services.set_role(other, user=user, role=Role.SPEAKER)
    commit()
    assert isinstance(held, PendingRole) and held.granted_by_id == organiser.id
    assert roles(event) == {} and user.role_in(event) is None
    assert registration.verify_address(user) is True
    commit()
    assert roles(event) == {"late@example.org": "organiser"}
    assert roles(other) == {"late@example.org": "speaker"}
    assert db.session.query(PendingRole).count() == 0
    assert registration.verify_address(user) is False


def test_unconfirmed_account_keeps_what_it_holds_and_lowering_applies_at_once(create_event, create_user) -> None:
    event = create_event()
    user = create_user("late@example.org", verified=False)
    services.register_attendee(event, user=user)  # registering oneself attaches nothing to the address
    services.set_role(event, user=user, role=Role.MODERATOR)
    commit()
    assert roles(event) == {"late@example.org": "attendee"}
    assert services.pending_role_of(event, user).role == "moderator"
    # An organiser changes their mind: a role no higher than the one held applies now and ends the wait.
    assert isinstance(services.set_role(event, user=user, role=Role.ATTENDEE), EventMembership)
    commit()
    assert services.pending_role_of(event, user) is None
    registration.verify_address(user)
    commit()
    assert roles(event) == {"late@example.org": "attendee"}


def test_waiting_import_role_never_lowers_a_role_given_meanwhile(create_event, create_user) -> None:
    event = create_event()
    user = create_user("late@example.org", verified=False)
    services.set_role(event, user=user, role=Role.SPEAKER, keep_higher=True)  # an import row
    services.set_role(event, user=user, role=Role.ATTENDEE, keep_higher=True)  # a second list
    commit()
    assert services.pending_role_of(event, user).role == "speaker"
    registration.verify_address(user)
    commit()
    assert roles(event) == {"late@example.org": "speaker"}
