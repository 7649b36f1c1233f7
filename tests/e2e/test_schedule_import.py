"""An organiser in Chromium imports a schedule.xml: Manage menu -> upload -> preview (diff table) -> apply.

The file is the demo's own published export with one title changed: the import matches the session by its
guid and updates it in the working agenda (no duplicate); the public agenda keeps the released title.
"""

from __future__ import annotations

import re
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT, LOCALES, MANAGE, assert_language, login_in_browser, run_axe, shot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("locale", LOCALES)
def test_organiser_uploads_previews_and_applies(new_page, live_server, screenshot_dir, tmp_path, locale) -> None:
    base = live_server.url
    lang = locale[:2]
    with urllib.request.urlopen(f"{base}{EVENT}/schedule.xml", timeout=30) as response:  # noqa: S310 - local
        exported = response.read().decode()
    titles = re.findall(r"<title>([^<]+)</title>", exported)[1:]  # [0] is the conference's title
    old_title = titles[0 if lang == "de" else 1]
    new_title = f"Importiert {lang} {uuid.uuid4().hex[:6]}"
    changed = exported.replace(f"<title>{old_title}</title>", f"<title>{new_title}</title>", 1)
    path = tmp_path / "schedule.xml"
    path.write_text(changed, encoding="utf-8")

    page = new_page(locale=locale, bypass_csp=True)  # (the CSP bypass only lets axe-core in)
    login_in_browser(page, base, "orga@demo.invalid")
    page.goto(f"{base}{MANAGE}/agenda")
    page.locator("details.nav-menu summary").click()
    page.locator(f"details.nav-menu a[href='{MANAGE}/agenda/import']").click()
    page.wait_for_url(f"**{MANAGE}/agenda/import")
    assert_language(page, locale)

    page.set_input_files("#import-file", str(path))
    with page.expect_navigation():
        page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()
    preview = page.locator("#import-preview")
    expect(preview).to_be_visible()
    # (The second language's run also sees the first run's title change undone: the file holds the release.)
    update_row = preview.locator("tr.change-update", has_text=new_title)
    expect(update_row).to_have_count(1)
    expect(update_row).to_contain_text(old_title)
    expect(preview.locator("tr.change-create")).to_have_count(0)
    shot(page, screenshot_dir, f"schedule-import-preview-{lang}")
    assert run_axe(page) == []  # the diff table and both forms: nothing serious for WCAG 2.1 AA

    with page.expect_navigation():
        preview.locator("form button[type=submit]").click()
    page.wait_for_url(f"**{MANAGE}/agenda")
    sessions = page.locator("table.manage-sessions")
    expect(sessions).to_contain_text(new_title)
    expect(sessions.get_by_role("link", name=old_title, exact=True)).to_have_count(0)  # updated, not duplicated
    # The public agenda shows the release, not the import, until the organisers publish.
    page.goto(f"{base}{EVENT}/agenda")
    expect(page.locator("main")).not_to_contain_text(new_title)
