"""The agenda on a phone lists a break that runs in every room once (naming the rooms), the grid on a laptop keeps
one card per room."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}


def test_breaks_listed_once_on_a_phone(new_page: Any, live_server: Any) -> None:
    page = new_page(viewport=PHONE)
    page.goto(f"{live_server.url}{EVENT}/agenda")
    breaks = page.locator(".agenda-grid .session-card.kind-break", has_text="Mittagspause")
    assert breaks.count() == 3  # one per room in the page
    visible = page.locator(".agenda-grid .session-card.kind-break:visible", has_text="Mittagspause")
    expect(visible).to_have_count(1)
    expect(visible.locator(".session-room")).to_contain_text("Hauptbühne, Raum A, Raum B")
    page.set_viewport_size(LAPTOP)
    expect(page.locator(".agenda-grid .session-card.kind-break:visible", has_text="Mittagspause")).to_have_count(3)
