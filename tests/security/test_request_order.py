"""The order of refusals: routing (404, 405 with `Allow`), then the view's loading and permission checks
(404, 401, 403), then CSRF and the text of the request (400). A refusal never says more than the address:
bad text to an address that does not exist is a 404, from someone who may not use it a 401/403.

Generated from the URL map: every path with every method it does not accept (TRACE too), every route with an
unknown event, and every route an anonymous caller may not use.
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from conference import create_app
from tests.fixtures.accounts import login
from tests.security.conftest import Evidence, StateGuard, World, assert_refused
from tests.security.test_authorization import CELLS, POLICY, UNSAFE, _url_values

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "TRACE")
BAD_QUERY = "q=%01&next=%E2%80%AE"  # a control character, a bidi override
BAD_TEXT = "Vortrag\x01\u202e"


def _paths() -> list[tuple[str, str, tuple[str, ...]]]:
    """(rule, a URL of it, the methods its path accepts) for every rule of the URL map."""
    app = create_app({"INSTANCE_PATH": tempfile.mkdtemp(prefix="order-"), "SECRET_KEY": "x", "TESTING": True,
                      "DATABASE_URL": "sqlite://", "ASYNC_MODE": "threading"})
    values = {"slug": "alpha", "token": "x", "action": "cancel", "filename": "css/main.css"}
    adapter = app.url_map.bind("localhost")
    paths = {}
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("socketio_"):
                continue  # matched for Socket.IO's request contexts, never served by Flask (Engine.IO answers)
            arguments = {name: values.get(name, 1) for name in rule.arguments}
            url = url_for(rule.endpoint, **arguments)
            paths[rule.rule] = (url, tuple(sorted(adapter.allowed_methods(url))))
    return sorted((rule, url, allowed) for rule, (url, allowed) in paths.items())


PATHS = _paths()


@pytest.fixture
def cookie_client(app: Flask, create_user: Any) -> FlaskClient:
    create_user("someone@example.org")
    client = app.test_client()
    assert login(client, "someone@example.org").status_code == 302
    return client


def _assert_405(response: Any, allowed: tuple[str, ...], evidence: Evidence, what: str) -> None:
    assert_refused(response, 405, evidence, what)
    assert set(response.headers.get("Allow", "").split(", ")) == set(allowed), (what, response.headers)
    assert response.headers["Content-Type"].startswith(("application/json", "text/html")), what


@pytest.mark.parametrize(("rule", "url", "allowed"), PATHS, ids=[rule for rule, _u, _a in PATHS])
def test_wrong_method_is_405_with_allow(rule: str, url: str, allowed: tuple[str, ...], client: FlaskClient,
                                        cookie_client: FlaskClient, evidence: Evidence) -> None:
    """Anonymous and with a login cookie but no CSRF token: the method is wrong, whatever else is."""
    wrong = [method for method in METHODS if method not in allowed]
    for method in wrong:
        for who, caller in (("anonymous", client), ("cookie without token", cookie_client)):
            response = caller.open(url, method=method, data={"text": "x"})
            _assert_405(response, allowed, evidence, f"{who} {method} {url}")
            json_response = caller.open(url, method=method, json={"text": "x"}, headers={"Accept": "application/json"})
            _assert_405(json_response, allowed, evidence, f"{who} {method} {url} (json)")
            assert json_response.get_json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND"])
def test_healthz_answers_other_methods_with_405(method: str, client: FlaskClient, cookie_client: FlaskClient,
                                                evidence: Evidence) -> None:
    for caller in (client, cookie_client):
        response = caller.open("/healthz", method=method)
        _assert_405(response, ("GET", "HEAD", "OPTIONS"), evidence, f"{method} /healthz")
        assert "expired" not in response.get_data(as_text=True)  # not the CSRF page


def test_options_lists_the_methods(client: FlaskClient, evidence: Evidence) -> None:
    response = client.options("/api/v1/events/alpha/sessions")
    evidence.response(response, refused=False, what="OPTIONS")
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


# --- bad text after routing and permission checks ---------------------------------------------------------


def _bad_request(world: World, principal: str, method: str, url: str, *, csrf: str | None = None) -> Any:
    """`method url` with bad text in the query string and in the body (JSON for the API, a form otherwise)."""
    target = f"{url}{'&' if '?' in url else '?'}{BAD_QUERY}"
    if url.startswith("/api/"):
        headers = {"Authorization": f"Bearer {world.tokens[principal]}"} if principal != "anonymous" else {}
        body = {"title": BAD_TEXT, "text": BAD_TEXT, "name": BAD_TEXT, "visibility_mode": BAD_TEXT}
        return world.app.test_client().open(target, method=method, headers=headers, json=body)
    data = {"title": BAD_TEXT, "text": BAD_TEXT, "name": BAD_TEXT, "email": f"x{BAD_TEXT}@example.org"}
    if csrf is not None:
        data["csrf_token"] = csrf
    return world.client(principal).open(target, method=method, data=data)


def test_bad_text_to_an_unknown_event_is_not_found(world: World, evidence: Evidence) -> None:
    """The case of the issue: a control character to /api/v1/events/nosuch/sessions."""
    for principal in ("anonymous", "organiser"):
        response = _bad_request(world, principal, "POST", "/api/v1/events/nosuch/sessions")
        assert_refused(response, 404, evidence, f"{principal} POST nosuch")
    anonymous = _bad_request(world, "anonymous", "POST", "/api/v1/events/alpha/sessions")
    assert_refused(anonymous, 401, evidence, "anonymous POST alpha")
    attendee = _bad_request(world, "attendee", "POST", "/api/v1/events/alpha/sessions")
    assert_refused(attendee, 403, evidence, "attendee POST alpha")
    organiser = _bad_request(world, "organiser", "POST", "/api/v1/events/alpha/sessions")
    assert_refused(organiser, 400, evidence, "organiser POST alpha")
    assert organiser.get_json()["error"] == "invalid_text"


SLUG_CELLS = [(e, m, r) for e, m, r in CELLS if "<slug>" in r]
ANONYMOUS_REFUSED = [(e, m, r) for e, m, r in CELLS if "anonymous" not in POLICY[(e, m)]]


def _url(world: World, endpoint: str, rule: str, **overrides: Any) -> str:
    values = {**_url_values(world), **overrides}
    with world.app.test_request_context():
        return url_for(endpoint, **{k: v for k, v in values.items() if f"<{k}>" in rule or f":{k}>" in rule})


@pytest.mark.parametrize(("endpoint", "method", "rule"), SLUG_CELLS, ids=[f"{m} {e}" for e, m, _r in SLUG_CELLS])
def test_bad_text_to_an_unknown_event_is_404_for_everyone(endpoint: str, method: str, rule: str, world: World,
                                                          guard: StateGuard, evidence: Evidence) -> None:
    url = _url(world, endpoint, rule, slug="nosuch")
    csrf = world.csrf("organiser")
    guard.take()
    organiser = _bad_request(world, "organiser", method, url, csrf=csrf)
    organiser.close()
    assert_refused(organiser, 404, evidence, f"organiser {method} {url}")
    anonymous = _bad_request(world, "anonymous", method, url, csrf=world.csrf("anonymous"))
    anonymous.close()
    _assert_login_answer_or_404(anonymous, evidence, f"anonymous {method} {url}")
    guard.assert_unchanged(f"{method} {url}")


def _assert_login_answer_or_404(response: Any, evidence: Evidence, what: str) -> None:
    """Views that need a login ask for it first (401 or the login page), the others look the event up."""
    if response.status_code in (302, 303) and "/login" in response.headers.get("Location", ""):
        evidence.response(response, refused=True, what=what)
    else:
        assert_refused(response, (401, 404), evidence, what)


@pytest.mark.parametrize(("endpoint", "method", "rule"), ANONYMOUS_REFUSED,
                         ids=[f"{m} {e}" for e, m, _r in ANONYMOUS_REFUSED])
def test_bad_text_from_someone_without_the_right_is_refused_as_such(endpoint: str, method: str, rule: str,
                                                                    world: World, guard: StateGuard,
                                                                    evidence: Evidence) -> None:
    """Anonymous callers get the login answer (401 or the login page) or 404, never the text check's 400.
    (A form without a CSRF token is refused before the view, as ever: the check protects the state.)"""
    url = _url(world, endpoint, rule)
    csrf = world.csrf("anonymous")  # a valid token of the anonymous session: only the text is wrong
    guard.take()
    response = _bad_request(world, "anonymous", method, url, csrf=csrf)
    response.close()
    _assert_login_answer_or_404(response, evidence, f"anonymous {method} {url}")
    guard.assert_unchanged(f"{method} {url}")


def test_bad_text_still_refused_where_the_caller_may_act(world: World, guard: StateGuard,
                                                         evidence: Evidence) -> None:
    """The check moved, it did not go: query string, form and JSON body, each on its own."""
    csrf = world.csrf("organiser")
    client = world.client("organiser")
    guard.take()
    cases = [
        client.get(f"/events/alpha/agenda?{BAD_QUERY}"),
        client.post("/manage/events/alpha/live/announcements", data={"csrf_token": csrf, "text": BAD_TEXT}),
        client.post("/manage/events/alpha/live/announcements", content_type="application/x-www-form-urlencoded",
                    data=f"csrf_token={csrf}&text=Hallo%FF".encode()),
        world.app.test_client().post("/api/v1/events/alpha/sessions", json={"title": BAD_TEXT},
                                     headers={"Authorization": f"Bearer {world.tokens['organiser']}"}),
        world.app.test_client().post("/api/v1/auth/token", json={"email": BAD_TEXT, "password": "x"}),
    ]
    for index, response in enumerate(cases):
        assert_refused(response, 400, evidence, f"bad text case {index}")
    guard.assert_unchanged("bad text")


@pytest.mark.parametrize("method", sorted(UNSAFE))
def test_unknown_address_is_404_before_csrf(method: str, world: World, evidence: Evidence) -> None:
    """No CSRF page for an address that does not exist (the cookie is there, the token is not)."""
    response = world.client("organiser").open("/manage/events/alpha/no-such-page", method=method, data={"x": "1"})
    assert_refused(response, 404, evidence, f"{method} unknown address")


def test_an_error_page_that_reads_the_query_stays_an_error(app: Flask, client: FlaskClient,
                                                          evidence: Evidence) -> None:
    """The text check refuses what a view reads; once the answer is an error, rendering it reads freely."""
    from flask import request

    from conference.core.errors import error_response

    @app.errorhandler(404)
    def not_found(error: Any) -> Any:
        body, status = error_response(404)
        return body, status, {"X-Query-Fields": str(len(request.args))}

    response = client.get("/no-such-page?q=%01")
    assert_refused(response, 404, evidence, "404 page reading a bad query")
    assert response.headers["X-Query-Fields"] == "1"
