"""Speakers in Chromium: an organiser invites one in the browser; the speaker follows the mailed link.

The speaker creates an account, accepts, completes the profile and uploads slides: the progress bar moves
(upload throttled to a phone-like 2 Mbit/s), the preview appears, and wrong files get a clear error.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from conference.presentations.demo import make_pdf
from tests.e2e.conftest import (
    EVENT,
    LOCALES,
    MANAGE,
    assert_language,
    confirm_in_browser,
    expect_http_error,
    login_in_browser,
    register_in_browser,
    shot,
)

pytestmark = pytest.mark.browser

UPLOAD_BYTES_PER_SECOND = 256 * 1024

# Reports every value the progress bar shows (it reflects `value` as an attribute) to the test.
WATCH_PROGRESS = """() => {
    const bar = document.querySelector("form.upload-form progress");
    new MutationObserver(() => window.reportProgress(Number(bar.value)))
        .observe(bar, {attributes: true, attributeFilter: ["value"]});
}"""


def big_pdf() -> bytes:
    """A real ~0.5 MB PDF, so the throttled upload takes about two seconds."""
    lines = [f"Zeile {i:03d} mit etwas Text, damit die Datei groß genug ist" for i in range(12)]
    return make_pdf("Folien aus dem Browsertest", lines, pages=400)


def reload_until(page, selector: str, timeout: float = 20.0) -> None:
    """The preview is rendered in the background: reload (bounded) until `selector` is on the page."""
    deadline = time.monotonic() + timeout
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} did not appear within {timeout}s"
        page.wait_for_timeout(300)
        page.reload()


@pytest.mark.parametrize("locale", LOCALES)
def test_invited_speaker_completes_profile_and_uploads(new_page, live_server, screenshot_dir, locale) -> None:
    base = live_server.url
    lang = locale[:2]
    token = uuid.uuid4().hex[:6]
    speaker_name = f"Dr. Browser Test {token}"
    invited_email = f"speaker-{token}@example.org"

    # The organiser invites a new speaker to a session, in the browser.
    organiser = new_page(locale=locale)
    login_in_browser(organiser, base, "orga@demo.invalid")
    organiser.goto(f"{base}{MANAGE}/speakers")
    assert_language(organiser, locale)
    session_option = organiser.locator("#session_id option").nth(1 if lang == "de" else 2)
    session_id = int(session_option.get_attribute("value"))
    organiser.select_option("#session_id", str(session_id))
    organiser.select_option("#speaker_id", "0")
    organiser.fill("#name", speaker_name)
    organiser.fill("#email", invited_email)
    organiser.select_option("#role", "speaker")
    with organiser.expect_navigation():
        organiser.locator(f"form[action$='{MANAGE}/speakers/invite'] button[type=submit]").click()
    expect(organiser.locator(".flash-success")).to_contain_text(invited_email)

    # The invitation link, read from the outbox page (no mail server configured).
    organiser.locator("nav.event-nav details.nav-menu summary").click()
    organiser.locator(f"nav.event-nav a[href$='{MANAGE}/outbox']").click()
    mail = organiser.locator("article.mail", has_text=invited_email)
    expect(mail).to_have_count(1)
    # In development mode (no EXTERNAL_URL) mail links point at the address the server runs on.
    link = mail.locator("a[href*='/invitations/']").evaluate("a => a.href")
    assert link.startswith(f"{base}{EVENT}/invitations/")

    # The speaker follows it, creates an account from there and accepts.
    speaker = new_page(locale=locale)
    speaker.goto(link)
    assert_language(speaker, locale)
    invitation_path = link[link.index(EVENT):]
    expect(speaker.locator("main a[href*='/register?next=']")).to_be_visible()
    register_in_browser(speaker, base, name=speaker_name, next_path=invitation_path, email=invited_email)
    expect(speaker).to_have_url(re.compile(re.escape(invitation_path) + "$"))
    # Only a confirmed address may accept: the confirmation link leads back to the invitation.
    expect(speaker.locator("main form button[type=submit]")).to_have_count(0)
    confirm_in_browser(speaker, base, invited_email)
    expect(speaker).to_have_url(re.compile(re.escape(invitation_path) + "$"))
    with speaker.expect_navigation():
        speaker.locator("main form button[type=submit]").click()
    expect(speaker).to_have_url(re.compile(rf"{EVENT}/speakers/\d+/edit$"))
    expect(speaker.locator(".flash-success")).to_be_visible()

    # Completes the profile; the public speaker page shows it.
    speaker.fill("#position", "Leitung Forschung")
    speaker.fill("#organisation", f"Institut {token}")
    speaker.fill("#bio", "Forscht zu **digitaler Verwaltung**.")
    with speaker.expect_navigation():
        speaker.locator("main form button[type=submit]").click()
    expect(speaker).to_have_url(re.compile(rf"{EVENT}/speakers/\d+$"))
    expect(speaker.locator("h1")).to_contain_text(speaker_name)
    expect(speaker.locator("main")).to_contain_text(f"Institut {token}")
    expect(speaker.locator("main strong", has_text="digitaler Verwaltung")).to_be_visible()
    shot(speaker, screenshot_dir, f"journey-speaker-profile-{lang}")

    # Slides on the session page: wrong files are refused with a visible error, nothing is stored.
    speaker.goto(f"{base}{EVENT}/sessions/{session_id}")
    form = speaker.locator("form.upload-form")
    expect(form).to_be_visible()
    error = form.locator(".upload-error")
    slides_before = speaker.locator(".slide-item").count()
    speaker.set_input_files(f"#slides-file-{session_id}", files=[
        {"name": "notizen.txt", "mimeType": "text/plain", "buffer": b"nur Text"}])
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(form.locator(".upload-progress-row")).to_be_hidden()
    expect_http_error(speaker, f"/api/v1/sessions/{session_id}/presentations", 422)
    speaker.set_input_files(f"#slides-file-{session_id}", files=[
        {"name": "folien.pdf", "mimeType": "application/pdf", "buffer": b"kein PDF, nur Text " * 50}])
    form.locator("button[type=submit]").click()  # choosing selects; the button sends
    expect(error).to_be_visible()  # the server checks the content, not the name
    expect(error).not_to_contain_text("(4")  # a real message, not just the status code
    speaker.reload()
    expect(speaker.locator(".slide-item")).to_have_count(slides_before)

    # A real PDF over a slow connection: the progress bar appears and moves, then the preview shows.
    values: list[float] = []
    speaker.expose_function("reportProgress", lambda value: values.append(value))
    speaker.evaluate(WATCH_PROGRESS)
    cdp = speaker.context.new_cdp_session(speaker)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20, "downloadThroughput": -1,
                                                  "uploadThroughput": UPLOAD_BYTES_PER_SECOND})
    with speaker.expect_navigation(timeout=30_000):  # the page reloads after a successful upload
        speaker.set_input_files(f"#slides-file-{session_id}", files=[
            {"name": "folien-browsertest.pdf", "mimeType": "application/pdf", "buffer": big_pdf()}])
        form.locator("button[type=submit]").click()
        expect(form.locator(".upload-progress-row")).to_be_visible()
        expect(form.locator("progress")).to_be_visible()
        expect(form.locator(".upload-status")).not_to_be_empty()
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    intermediate = [v for v in values if 0 < v < 100]
    assert intermediate, values
    assert values == sorted(values) and values[-1] == 100, values
    reload_until(speaker, "img.slide-thumb")
    item = speaker.locator(".slide-item", has_text="folien-browsertest.pdf")
    expect(item).to_have_count(1)
    thumb = item.locator("img.slide-thumb")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    shot(speaker, screenshot_dir, f"journey-speaker-slides-{lang}")
