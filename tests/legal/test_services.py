"""Legal texts: versions, fallback from an event to the deployment, consent records."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from conference.auth.models import User
from conference.core.after_commit import commit
from conference.core.errors import Conflict, ValidationFailed
from conference.events.models import Event
from conference.extensions import db
from conference.legal import services
from conference.legal.models import LegalKind, LegalText, PrivacyConsent


def _numbers(event: Event | None, kind: LegalKind) -> list[int]:
    return [text.number for text, _count in services.versions(event, kind)]


def test_changed_text_is_a_new_version_and_unchanged_text_is_not(publish: Callable[..., None]) -> None:
    publish(impressum="Anbieter: A", privacy="# Datenschutz\n\nVersion eins")
    publish(impressum="Anbieter: A\r\n", privacy="# Datenschutz\r\n\r\nVersion eins  ")  # same text, other endings
    assert _numbers(None, LegalKind.PRIVACY) == [1]
    assert _numbers(None, LegalKind.IMPRESSUM) == [1]
    publish(impressum="Anbieter: A", privacy="# Datenschutz\n\nVersion zwei")
    assert _numbers(None, LegalKind.PRIVACY) == [2, 1]
    assert _numbers(None, LegalKind.IMPRESSUM) == [1]
    texts = db.session.scalars(select(LegalText).where(LegalText.kind == LegalKind.PRIVACY)
                               .order_by(LegalText.number)).all()
    assert [t.body for t in texts] == ["# Datenschutz\n\nVersion eins", "# Datenschutz\n\nVersion zwei"]


def test_event_page_falls_back_to_the_deployment(publish: Callable[..., None],
                                                  create_event: Callable[..., Event]) -> None:
    event = create_event("fallback")
    assert services.page_text(event, LegalKind.IMPRESSUM) == (None, False)
    publish(impressum="Plattform-Impressum")
    text, own = services.page_text(event, LegalKind.IMPRESSUM)
    assert (text.body if text else None, own) == ("Plattform-Impressum", False)
    publish(event, impressum="Veranstalter-Impressum")
    text, own = services.page_text(event, LegalKind.IMPRESSUM)
    assert (text.body if text else None, own) == ("Veranstalter-Impressum", True)
    publish(event, impressum="   ")  # emptied: the event has no page of its own again
    text, own = services.page_text(event, LegalKind.IMPRESSUM)
    assert (text.body if text else None, own) == ("Plattform-Impressum", False)
    assert services.page_text(None, LegalKind.IMPRESSUM)[0].body == "Plattform-Impressum"  # type: ignore[union-attr]


def test_too_long_text_refused_and_nothing_saved(publish: Callable[..., None], admin: User) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.save_texts(None, texts={LegalKind.IMPRESSUM: "ok",
                                         LegalKind.PRIVACY: "x" * (services.MAX_TEXT_CHARS + 1)}, actor=admin)
    db.session.rollback()
    assert refused.value.field == "privacy"
    assert db.session.scalar(select(LegalText.id)) is None


def test_new_privacy_version_asks_everyone_again(publish: Callable[..., None],
                                                 create_user: Callable[..., User]) -> None:
    person = create_user("person@example.org")
    assert services.pending_privacy_notice(person.id) is None  # no notice: nothing to accept
    publish(privacy="Version eins")
    first = services.current_privacy_notice()
    assert first is not None and services.pending_privacy_notice(person.id) == first.id
    services.accept_privacy_notice(person, notice_id=first.id)
    commit()
    assert services.pending_privacy_notice(person.id) is None
    publish(privacy="Version zwei")
    second = services.current_privacy_notice()
    assert second is not None and second.number == 2
    assert services.pending_privacy_notice(person.id) == second.id
    with pytest.raises(Conflict):  # the page of version one, accepted after version two was published
        services.accept_privacy_notice(person, notice_id=first.id)
    services.accept_privacy_notice(person, notice_id=second.id)
    services.accept_privacy_notice(person, notice_id=second.id)  # twice: still one record
    commit()
    records = services.consents_payload(person)
    assert [(r["privacy_notice_version"], r["source"]) for r in records] == [(1, "prompt"), (2, "prompt")]
    publish(privacy="")  # an empty notice asks nobody
    assert services.current_privacy_notice() is None and services.pending_privacy_notice(person.id) is None


def test_event_privacy_page_is_not_asked_for(publish: Callable[..., None], create_event: Callable[..., Event],
                                            create_user: Callable[..., User]) -> None:
    person = create_user("person@example.org")
    publish(create_event("eigene"), privacy="Datenschutz der Veranstaltung")
    assert services.pending_privacy_notice(person.id) is None
    assert db.session.scalar(select(PrivacyConsent.id)) is None
