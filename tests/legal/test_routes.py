"""Legal pages: public rendering (sanitised Markdown), the editors and who may use them, the footer links."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from conference.auth.models import User
from conference.core.permissions import Role
from conference.events.models import Event
from conference.extensions import db
from conference.legal.forms import LEGAL_FORM_MAX_BYTES
from conference.legal.models import LegalText
from tests.fixtures.accounts import csrf_token, login
from tests.legal.conftest import accept_notice

HOSTILE = ("# Anbieter\n\nMusterstraße 1\n01234 Kohlhaven\n\n<script>alert('impressum')</script>\n\n"
           "[Klick](javascript:alert(1)) <img src=x onerror=alert(2)> [Kontakt](mailto:a@example.org)")


def _body(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def _article(html: str) -> str:
    return html.split('<article class="legal-page">')[1].split("</article>")[0]


def test_markdown_rendered_and_sanitised(client: FlaskClient, publish: Callable[..., None]) -> None:
    publish(impressum=HOSTILE)
    article = _article(_body(client.get("/impressum")))
    assert "<h2>Anbieter</h2>" in article
    assert "Musterstraße 1<br>\n01234 Kohlhaven" in article  # an address keeps its lines
    assert '<a href="mailto:a@example.org" rel="noopener noreferrer nofollow">Kontakt</a>' in article
    assert "<script" not in article and "javascript:" not in article and "onerror" not in article
    assert "<img" not in article


def test_empty_pages_say_so_and_answer_200(client: FlaskClient, create_event: Callable[..., Event]) -> None:
    create_event("leer")
    for url in ("/impressum", "/datenschutz", "/events/leer/impressum", "/events/leer/datenschutz"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "This page has not been written yet." in _body(response)


def test_event_pages_fall_back_to_the_deployment(client: FlaskClient, publish: Callable[..., None],
                                                 create_event: Callable[..., Event]) -> None:
    event = create_event("jahrestagung")
    publish(impressum="Plattform GmbH", privacy="Datenschutz der Plattform")
    publish(event, impressum="Verein e.V.")
    own = _body(client.get("/events/jahrestagung/impressum"))
    assert "Verein e.V." in own and "Plattform GmbH" not in own
    assert "This event has no page of its own" not in own
    fallback = _body(client.get("/events/jahrestagung/datenschutz"))
    assert "Datenschutz der Plattform" in fallback and "This event has no page of its own" in fallback
    assert "Plattform GmbH" in _body(client.get("/impressum"))


def test_unpublished_event_pages_are_not_found_for_the_public(client: FlaskClient, publish: Callable[..., None],
                                                              create_event: Callable[..., Event]) -> None:
    event = create_event("entwurf", published=False)
    publish(event, impressum="Geheimer Entwurf")
    for url in ("/events/entwurf/impressum", "/events/entwurf/datenschutz"):
        assert client.get(url).status_code == 404


def _save(client: FlaskClient, url: str, **texts: str):  # type: ignore[no-untyped-def]
    return client.post(url, data={"csrf_token": csrf_token(client, url), **texts})


def test_site_pages_edited_by_administrators_only(client: FlaskClient, admin: User,
                                                  create_user: Callable[..., User], person: Callable[..., User],
                                                  create_event: Callable[..., Event]) -> None:
    organiser = person(create_event("tagung"), Role.ORGANISER)
    login(client, organiser.email)
    assert client.get("/manage/legal").status_code == 403
    token = csrf_token(client, "/impressum")
    assert client.post("/manage/legal", data={"csrf_token": token, "impressum": "Gekapert"}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    login(client, admin.email)
    response = _save(client, "/manage/legal", impressum="# Impressum\n\nPlattform GmbH", privacy="")
    assert response.status_code == 303 and response.headers["Location"] == "/manage/legal"
    assert "Plattform GmbH" in _body(client.get("/impressum"))
    assert db.session.scalar(select(func.count()).select_from(LegalText)) == 1  # the empty notice: no version
    assert 'href="/manage/legal"' in _body(client.get("/impressum"))  # the administrator's footer link


def test_event_pages_edited_by_the_event_organisers_only(client: FlaskClient, person: Callable[..., User],
                                                         create_event: Callable[..., Event]) -> None:
    event, other = create_event("tagung"), create_event("andere")
    outsiders = [person(event, Role.MODERATOR), person(other, Role.ORGANISER)]
    for outsider in outsiders:
        login(client, outsider.email)
        assert client.get("/manage/events/tagung/legal").status_code == 403
        token = csrf_token(client, "/impressum")
        refused = client.post("/manage/events/tagung/legal", data={"csrf_token": token, "impressum": "Gekapert"})
        assert refused.status_code == 403
        client.post("/logout", data={"csrf_token": token})
    assert db.session.scalar(select(func.count()).select_from(LegalText)) == 0
    login(client, person(event, Role.ORGANISER).email)
    response = _save(client, "/manage/events/tagung/legal", impressum="Verein e.V.", privacy="")
    assert response.status_code == 303
    assert "Verein e.V." in _body(client.get("/events/tagung/impressum"))
    assert "Verein e.V." not in _body(client.get("/impressum"))
    assert "Verein e.V." not in _body(client.get("/events/andere/impressum"))


def test_editor_without_csrf_token_refused(client: FlaskClient, admin: User) -> None:
    login(client, admin.email)
    assert client.post("/manage/legal", data={"impressum": "Ohne Token"}).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(LegalText)) == 0


def test_editor_too_long_text_refused_with_message(client: FlaskClient, admin: User) -> None:
    login(client, admin.email)
    response = _save(client, "/manage/legal", impressum="ok", privacy="x" * 50_001)
    assert response.status_code == 400
    assert "The text may have at most 50000 characters." in _body(response)
    assert db.session.scalar(select(func.count()).select_from(LegalText)) == 0


def test_editor_body_over_limit_refused_before_parsing(client: FlaskClient, admin: User) -> None:
    login(client, admin.email)
    token = csrf_token(client, "/manage/legal")
    response = client.post("/manage/legal", data={"csrf_token": token, "impressum": "x" * LEGAL_FORM_MAX_BYTES})
    assert response.status_code == 413
    assert db.session.scalar(select(func.count()).select_from(LegalText)) == 0


# --- the footer ------------------------------------------------------------------------------------------

FOOTER = re.compile(r'<footer class="site-footer">(.*?)</footer>', re.S)


def _footer_links(html: str) -> list[str]:
    footers = FOOTER.findall(html)
    assert len(footers) == 1
    return re.findall(r'<a href="([^"]+)">', footers[0])


@pytest.mark.parametrize("logged_in", [False, True])
def test_every_main_page_links_the_legal_pages_in_its_footer(client: FlaskClient, publish: Callable[..., None],
                                                             create_event: Callable[..., Event],
                                                             create_user: Callable[..., User],
                                                             logged_in: bool) -> None:
    create_event("tagung"), create_event("zweite")
    publish(impressum="Plattform GmbH", privacy="Datenschutz der Plattform")
    if logged_in:
        user = create_user("leser@example.org")
        login(client, user.email)
        assert accept_notice(client).status_code == 303
    site = ["/impressum", "/datenschutz"]
    event = ["/events/tagung/impressum", "/events/tagung/datenschutz"]
    pages = {"/": site, "/login": site, "/register": site, "/no-such-page": site, "/impressum": site,
             "/events/tagung/": event, "/events/tagung/agenda": event, "/events/tagung/speakers": event,
             "/events/tagung/presentations": event, "/events/tagung/impressum": event}
    if logged_in:
        pages["/account"] = site
    for url, expected in pages.items():
        response = client.get(url)
        assert response.status_code in (200, 404), url
        links = _footer_links(_body(response))
        assert links[:2] == expected, url
        for link in links[:2]:  # plain links: they work with a GET and no script
            assert client.get(link).status_code == 200, link
