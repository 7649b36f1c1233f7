"""Helpers for the legal tests: publish texts as a site administrator would."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conference.auth.models import User
from conference.core.after_commit import commit
from conference.events.models import Event
from conference.legal import services
from conference.legal.models import LegalKind


@pytest.fixture
def admin(create_user: Callable[..., User]) -> User:
    return create_user("admin@example.org", name="Site Admin", is_admin=True)


@pytest.fixture
def publish(app: Flask, admin: User) -> Callable[..., None]:
    """Save legal texts of the deployment (`event` None) or of an event, as the site administrator."""

    def _publish(event: Event | None = None, *, impressum: str | None = None, privacy: str | None = None) -> None:
        texts = {kind: body for kind, body in ((LegalKind.IMPRESSUM, impressum), (LegalKind.PRIVACY, privacy))
                 if body is not None}
        services.save_texts(event, texts=texts, actor=admin)
        commit()

    return _publish


def accept_notice(client: FlaskClient) -> Any:
    """Accept the privacy notice the consent page shows, as a browser would (the page's hidden fields)."""
    html = client.get("/datenschutz/zustimmung").get_data(as_text=True)
    fields = dict(re.findall(r'<input id="(csrf_token|notice_id)" name="\1" type="hidden" value="([^"]*)">', html))
    return client.post("/datenschutz/zustimmung", data=fields)
