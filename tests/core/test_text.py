"""`core.text`: one set of forbidden characters for every field, U+FFFD refused everywhere."""

from __future__ import annotations

import pytest

from conference.auth.accounts import validate_name
from conference.core.errors import ValidationFailed
from conference.core.text import has_forbidden_line_text, has_forbidden_text
from conference.live.inputs import clean_text
from conference.speakers import services as speaker_services

REFUSED = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\u202e", "\u2067", "\ufffd", "\ud800"]
ALLOWED = ["a", "ä", "€", "\u200d", "😀", "\u00a0"]


@pytest.mark.parametrize("character", REFUSED)
def test_every_field_refuses_the_same_characters(app, character: str) -> None:  # type: ignore[no-untyped-def]
    text = f"Hallo {character} Welt"
    assert has_forbidden_text(text) and has_forbidden_line_text(text)
    with app.test_request_context():
        with pytest.raises(ValidationFailed):
            clean_text(text, field="text", limit=500)  # chat, questions
        with pytest.raises(ValidationFailed):
            validate_name(text)  # account names
        with pytest.raises(ValidationFailed):
            speaker_services._text(text, name="bio", max_length=500)  # speaker profiles


@pytest.mark.parametrize("character", ALLOWED)
def test_ordinary_text_passes_everywhere(app, character: str) -> None:  # type: ignore[no-untyped-def]
    text = f"Hallo {character} Welt"
    assert not has_forbidden_text(text) and not has_forbidden_line_text(text)
    with app.test_request_context():
        assert clean_text(text, field="text", limit=500) == text


@pytest.mark.parametrize("character", ["\n", "\r", "\t", "\u2028", "\u2029"])
def test_line_breaks_only_in_multi_line_fields(app, character: str) -> None:  # type: ignore[no-untyped-def]
    text = f"erste{character}zweite"
    assert not has_forbidden_text(text) and has_forbidden_line_text(text)
    with app.test_request_context():
        with pytest.raises(ValidationFailed):
            validate_name(text)
        with pytest.raises(ValidationFailed):
            speaker_services._text(text, name="name", max_length=500)
        assert speaker_services._text(text, name="bio", max_length=500) == text


def test_the_request_boundary_refuses_u_fffd(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/auth/token", json={"email": "anna\ufffd@example.org", "password": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_text"
