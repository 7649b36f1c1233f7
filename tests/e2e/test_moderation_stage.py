"""Moderation on the session page: a link to the moderation view, no actions on one's own messages, delete and ban
asked first, a chosen mute length, and visible feedback."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login_in_browser
from tests.e2e.test_stage import ATTENDEE, SLUG, live_server, stage_url  # noqa: F401 - the stage's server fixture

pytestmark = pytest.mark.browser

MODERATOR = "admin@demo.invalid"


def test_moderator_mutes_for_a_chosen_time_and_deletes_after_confirming(new_page: Any, live_server: Any) -> None:  # noqa: F811
    url = stage_url(live_server)
    attendee = new_page()
    login_in_browser(attendee, live_server.url, ATTENDEE)
    attendee.goto(url)
    expect(attendee.locator(".live-moderation-link")).to_have_count(0)
    attendee.fill("textarea[id^=chat-text-]", "Eine Frage aus dem Publikum")
    attendee.locator(".chat-form button[type=submit]").click()
    theirs = attendee.locator(".chat-message", has_text="Eine Frage aus dem Publikum")
    expect(theirs).to_be_visible()

    moderator = new_page()
    login_in_browser(moderator, live_server.url, MODERATOR)
    moderator.goto(url)
    link = moderator.locator(".live-moderation-link a")
    expect(link).to_have_attribute("href", f"/manage/events/{SLUG}/live")
    moderator.fill("textarea[id^=chat-text-]", "Willkommen, hier moderiert")
    moderator.locator(".chat-form button[type=submit]").click()
    own = moderator.locator(".chat-message", has_text="Willkommen, hier moderiert")
    expect(own).to_be_visible()
    expect(own.locator("[data-action]")).to_have_count(0)  # nothing to moderate on one's own message
    expect(own.locator("select.mute-length")).to_have_count(0)

    message = moderator.locator(".chat-message", has_text="Eine Frage aus dem Publikum")
    expect(message.locator("[data-action=delete]")).to_be_visible()
    values = message.locator("select.mute-length option").evaluate_all("os => os.map(o => o.value)")
    assert values == ["5", "15", "60", "1440"]
    message.locator("select.mute-length").select_option("60")
    message.locator("[data-action=mute]").click()
    feedback = moderator.locator("[data-live-mod-feedback]")
    expect(feedback).to_be_visible()
    expect(feedback).to_have_class("live-mod-feedback flash flash-success")

    # The muted attendee cannot write now.
    attendee.fill("textarea[id^=chat-text-]", "Noch eine Nachricht")
    attendee.locator(".chat-form button[type=submit]").click()
    expect(attendee.locator("[data-live-error]")).to_be_visible()

    # Delete asks first: dismissing keeps the message, accepting removes it.
    moderator.once("dialog", lambda dialog: dialog.dismiss())
    message.locator("[data-action=delete]").click()
    expect(message).to_be_visible()
    moderator.once("dialog", lambda dialog: dialog.accept())
    message.locator("[data-action=delete]").click()
    expect(moderator.locator(".chat-message", has_text="Eine Frage aus dem Publikum")).to_have_count(0)
    expect(feedback).to_have_class("live-mod-feedback flash flash-success")
    expect(theirs).to_have_count(0)

    # The moderation view asks before a ban.
    link.click()
    form = moderator.locator("form[data-confirm-kind=ban]")
    form.locator("[name=email]").fill(ATTENDEE)
    form.locator("[name=kind]").select_option("ban")
    asked: list[str] = []
    moderator.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    form.locator("button[type=submit]").click()
    expect(form).to_be_visible()
    assert len(asked) == 1
