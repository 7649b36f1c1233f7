"""Calendar days in the page's language: 18.03.2027 in German, Mar 18, 2027 in English (as in_zone), never 2027-03-18 as text."""

from __future__ import annotations

import re
from datetime import date

import pytest

from conference.core.permissions import Role
from tests.fixtures.accounts import login

#: An ISO date outside an attribute value (attributes such as datetime="..." and value="..." keep ISO).
ISO_AS_TEXT = re.compile(r">[^<]*\d{4}-\d{2}-\d{2}[^<]*<")


@pytest.mark.parametrize(("language", "shown"), [("de", "18.03.2027"), ("en", "Mar 18, 2027")])
def test_event_pages_show_days_in_the_page_language(client, create_event, create_room, create_agenda_session,
                                                    person, language, shown) -> None:
    event = create_event("datum-conf", start=date(2027, 3, 18), end=date(2027, 3, 19))
    session = create_agenda_session(event, "Vortrag", room=create_room(event, "Saal"))
    create_event("andere-conf", start=date(2027, 3, 18))  # two events: the start page lists them as cards
    headers = {"Accept-Language": language}
    for url in ("/", "/events/datum-conf/"):
        html = client.get(url, headers=headers).get_data(as_text=True)
        assert shown in html, url
        assert ISO_AS_TEXT.search(html) is None, (url, ISO_AS_TEXT.search(html))
    login(client, person(event, Role.ORGANISER).email)
    html = client.get(f"/manage/events/datum-conf/agenda/sessions/{session.id}", headers=headers).get_data(as_text=True)
    assert re.search(rf'<option [^>]*value="2027-03-18"[^>]*>{shown}</option>', html)
