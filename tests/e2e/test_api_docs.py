"""/api/v1/docs in Chromium: lists every operation of openapi.json, its "Try it" forms work under the site's CSP
(no console errors, nothing loaded from elsewhere), and axe finds nothing serious."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.conftest import expect_http_error, run_axe

pytestmark = pytest.mark.browser
METHODS = {"get", "put", "post", "patch", "delete"}


def test_api_docs_lists_every_operation_and_tries_them(new_page, live_server) -> None:
    document = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=10).json()
    operations = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
                  if method in METHODS}
    page = new_page(locale="de-DE")  # with the CSP the server sends
    page.goto(f"{live_server.url}/api/v1/docs")
    listed = set(page.locator("[data-operation]").evaluate_all("els => els.map(e => e.dataset.operation)"))
    assert listed == operations and len(listed) >= 30

    events = page.locator('[data-operation="GET /api/v1/events"]')
    events.locator("summary").click()
    events.get_by_role("button", name="Senden").click()
    expect(events.locator(".api-status")).to_have_text(re.compile(r"^200"))
    expect(events.locator(".api-response")).to_contain_text("digitalkonferenz-2027")

    expect_http_error(page, "/api/v1/me", 401)
    me = page.locator('[data-operation="GET /api/v1/me"]')
    me.locator("summary").click()
    me.get_by_role("button", name="Senden").click()
    expect(me.locator(".api-status")).to_have_text(re.compile(r"^401"))
    expect(me.locator(".api-response")).to_contain_text("unauthenticated")

    token = requests.post(f"{live_server.url}/api/v1/auth/token", timeout=10, json={
        "email": "orga@demo.invalid", "password": "demo-passwort-2027", "name": "docs"}).json()["token"]
    page.get_by_label("API-Token (optional)").fill(token)
    me.get_by_role("button", name="Senden").click()
    expect(me.locator(".api-status")).to_have_text(re.compile(r"^200"))
    expect(me.locator(".api-response")).to_contain_text("orga@demo.invalid")


def test_api_docs_has_no_serious_accessibility_violations(new_page, live_server) -> None:
    page = new_page(locale="de-DE", bypass_csp=True)  # axe is injected as a script
    page.goto(f"{live_server.url}/api/v1/docs")
    page.locator('[data-operation="POST /api/v1/events/{slug}/sessions"] summary').click()
    assert run_axe(page) == []
