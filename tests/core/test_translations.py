"""The German catalogue is complete and well-formed, and pages speak the language the browser asks for."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from conference.core.permissions import Role
from tests.fixtures.accounts import login

ROOT = Path(__file__).resolve().parents[2]
GERMAN_PO = ROOT / "conference" / "translations" / "de" / "LC_MESSAGES" / "messages.po"
WORKFLOW = "run `python scripts/i18n.py update`, add the German text to a JSON file in i18n/ and `apply` it"
# printf-style conversions as Python's % operator reads them: %(name)s, %d, %.1f, %% ...
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


@pytest.fixture(scope="module")
def german() -> Catalog:
    with GERMAN_PO.open("rb") as handle:
        return read_po(handle, locale="de")


def messages(catalog: Catalog) -> list[Any]:
    return [m for m in catalog if m.id]


def test_german_catalogue_header_is_not_fuzzy(german: Catalog) -> None:
    # `pybabel compile` skips a catalogue whose header is fuzzy, which would leave the site in English.
    assert german.fuzzy is False


def test_every_german_msgid_is_translated(german: Catalog) -> None:
    missing = [m.id for m in messages(german) if not m.string]
    assert missing == [], f"untranslated German messages; {WORKFLOW}"


def test_no_german_translation_is_fuzzy(german: Catalog) -> None:
    assert [m.id for m in messages(german) if m.fuzzy] == []


def test_placeholders_match_between_msgid_and_msgstr(german: Catalog) -> None:
    wrong = [(m.id, m.string) for m in messages(german)
             if sorted(PLACEHOLDER.findall(m.id)) != sorted(PLACEHOLDER.findall(m.string))]
    assert wrong == []


def test_placeholder_pattern_sees_named_and_positional_conversions() -> None:
    assert PLACEHOLDER.findall("%(n)d of %(total)d at %s: 50 %% (%.1f)") == ["%(n)d", "%(total)d", "%s", "%%", "%.1f"]


def test_catalogue_holds_every_string_of_the_sources(german: Catalog) -> None:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    found = {(message if isinstance(message, str) else message[0]): filename
             for filename, _line, message, _comments, _context
             in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}
    assert len(found) > 500  # the extraction really read the sources
    absent = sorted(f"{filename}: {msgid}" for msgid, filename in found.items() if msgid not in german)
    assert absent == [], f"strings missing from the German catalogue; {WORKFLOW}"


# --- pages -------------------------------------------------------------------------------------------------------

def get(client: FlaskClient, path: str, language: str) -> str:
    response = client.get(path, headers={"Accept-Language": language})
    return str(response.get_data(as_text=True))


@pytest.mark.parametrize(("language", "expected", "absent"), [
    ("de", ['<html lang="de">', "Virtuelle Konferenz", "Anmelden", "Zum Inhalt springen", "Keine bevorstehenden"],
     ["Log in", "Skip to content"]),
    ("de-DE,de;q=0.9,en;q=0.5", ['<html lang="de">', "Anmelden"], ["Log in"]),
    ("en", ['<html lang="en">', "Virtual conference", "Log in", "Skip to content", "No upcoming conferences."],
     ["Anmelden", "Zum Inhalt springen"]),
])
def test_start_page_speaks_the_requested_language(client: FlaskClient, language: str, expected: list[str],
                                                  absent: list[str]) -> None:
    html = get(client, "/", language)
    assert [text for text in expected if text not in html] == []
    assert [text for text in absent if text in html] == []


@pytest.mark.parametrize(("language", "title", "text"), [
    ("de", "Seite nicht gefunden", "Unter dieser Adresse gibt es nichts."),
    ("en", "Page not found", "There is nothing at this address."),
])
def test_error_page_speaks_the_requested_language(client: FlaskClient, language: str, title: str, text: str) -> None:
    response = client.get("/no-such-page", headers={"Accept-Language": language})
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert title in html and text in html


@pytest.mark.parametrize(("language", "flash", "nav"), [
    ("de", "Sie sind angemeldet.", "Abmelden"),
    ("en", "You are logged in.", "Log out"),
])
def test_flash_message_after_login_is_translated(client: FlaskClient, create_user: Callable[..., Any],
                                                 language: str, flash: str, nav: str) -> None:
    user = create_user()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    response = login(client, user.email)
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert flash in html and nav in html


@pytest.mark.parametrize(("language", "texts"), [
    ("de", ["Lobby-Chat", "Ihre Nachricht", 'data-label-reconnecting="Verbindung unterbrochen. Neuer Verbindungsversuch …"',
            'data-label-role-speaker="Referent*in"', 'data-label-slow="Langsamer Modus: %s s"',
            'data-label-your-time="Ihre Zeit"', 'data-label-your-zone="Ihre Zeitzone: %s."']),
    ("en", ["Lobby chat", "Your message", 'data-label-reconnecting="Connection lost. Reconnecting…"',
            'data-label-role-speaker="Speaker"', 'data-label-slow="Slow mode: %s s"',
            'data-label-your-time="your time"', 'data-label-your-zone="Your time zone: %s."']),
])
def test_lobby_gives_the_script_its_texts_in_the_requested_language(
        client: FlaskClient, create_event: Callable[..., Any], person: Callable[..., Any],
        language: str, texts: list[str]) -> None:
    event = create_event("sprachtest")
    user = person(event, Role.ATTENDEE)
    login(client, user.email)
    html = get(client, f"/events/{event.slug}/lobby", language)
    assert [text for text in texts if text not in html] == []


@pytest.mark.parametrize(("language", "texts"), [
    ("de", ["Agenda", "Alle Zeiten in Europe/Berlin.", "Vortrag", "Zu meiner Agenda hinzufügen"]),
    ("en", ["Agenda", "All times in Europe/Berlin.", "Talk", "Add to my agenda"]),
])
def test_agenda_speaks_the_requested_language(client: FlaskClient, agenda_world: Any,
                                              create_agenda_session: Callable[..., Any],
                                              publish: Callable[..., Any], person: Callable[..., Any],
                                              language: str, texts: list[str]) -> None:
    create_agenda_session(agenda_world.event, "Strukturwandel", room=agenda_world.rooms[0])
    publish(agenda_world.event)
    login(client, person(agenda_world.event, Role.ATTENDEE).email)
    html = get(client, f"/events/{agenda_world.event.slug}/agenda", language)
    assert [text for text in texts if text not in html] == []
