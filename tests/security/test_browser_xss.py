"""XSS in a real browser: every payload lands in chat, questions, names, bios, titles and abstracts of the real
server (eventlet), then Debian's Chromium opens every page that shows them with a canary that must never fire.

Two passes: one with the site's Content-Security-Policy bypassed (escaping alone must hold) and one with it
(no CSP violation may even be attempted). The canary is `window.__canary` (defined before any page script),
`alert`/`confirm`/`prompt` and the dialog event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require_service
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, SLUG
from tests.security.conftest import Evidence
from tests.security.payloads import TEMPLATE_INJECTION, TEMPLATE_RESULT, XSS
from tests.support.server import RunningServer, running_server
from tests.support.sockets import LiveClient

pytestmark = [pytest.mark.browser, pytest.mark.server]

CANARY_SCRIPT = """
(() => {
  window.__xss = [];
  window.__csp = [];
  const hit = (what) => { window.__xss.push(String(what)); };
  Object.defineProperty(window, '__canary', {value: hit, writable: false});
  window.alert = (m) => hit('alert:' + m);
  window.confirm = (m) => { hit('confirm:' + m); return false; };
  window.prompt = (m) => { hit('prompt:' + m); return null; };
  document.addEventListener('securitypolicyviolation',
    (e) => window.__csp.push(e.violatedDirective + ' ' + (e.sample || '')));
})();
"""
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@dataclass
class Seeded:
    server: RunningServer
    session_ids: list[int]
    speaker_ids: list[int]
    chat_session: int
    attendee_email: str


def _csrf(http: requests.Session, url: str) -> str:
    match = CSRF.search(http.get(url, timeout=10).text)
    assert match, url
    return match.group(1) or match.group(2)


def _browser_login(http: requests.Session, base: str, email: str, password: str = DEMO_PASSWORD) -> None:
    token = _csrf(http, f"{base}/login")
    response = http.post(f"{base}/login", data={"email": email, "password": password, "csrf_token": token},
                         headers={"Referer": f"{base}/login"}, timeout=10, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    require_service("Chromium", Path(CHROMIUM).exists(), "Debian package chromium not installed")
    instance = tmp_path_factory.mktemp("xss") / "instance"
    with running_server(instance, "eventlet", demo_attendees=4, tokens=True,
                        CONFERENCE_LIVE_CHAT_RATE_LIMIT="1000/10") as server:
        base = server.url
        api = requests.Session()
        token = api.post(f"{base}/api/v1/auth/token", json={"email": "orga@demo.invalid",
                                                             "password": DEMO_PASSWORD}, timeout=10).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        sessions = api.get(f"{base}/api/v1/events/{SLUG}/sessions", timeout=10).json()["sessions"]
        room_id = next(s["slots"][0]["room_id"] for s in sessions if s.get("slots"))
        organiser = requests.Session()
        _browser_login(organiser, base, "orga@demo.invalid")
        payloads = [*XSS, *TEMPLATE_INJECTION]
        for payload in payloads[:8]:
            token_field = _csrf(organiser, f"{base}/manage/events/{SLUG}/speakers/new")
            response = organiser.post(f"{base}/manage/events/{SLUG}/speakers/new", timeout=10, data={
                "csrf_token": token_field, "name": payload[:120], "organisation": payload[:160],
                "position": payload[:120], "bio": payload, "links": ""}, allow_redirects=False)
            assert response.status_code == 303, response.text[:300]
        manage = organiser.get(f"{base}/manage/events/{SLUG}/speakers", timeout=10).text
        speaker_ids = sorted({int(m) for m in re.findall(rf"/events/{SLUG}/speakers/(\d+)/edit", manage)})[-8:]
        session_ids = []
        for index, payload in enumerate(payloads):
            hour, minute = 19 + index // 6, (index % 6) * 10
            response = api.post(f"{base}/api/v1/events/{SLUG}/sessions", timeout=10, json={
                "title": payload[:200], "abstract": payload, "room_id": room_id,
                "speakers": [speaker_ids[index % len(speaker_ids)]],
                "start": f"2027-03-18T{hour:02d}:{minute:02d}:00+01:00",
                "end": f"2027-03-18T{hour:02d}:{minute + 5:02d}:00+01:00"})
            assert response.status_code == 201, response.text[:300]
            session_ids.append(response.json()["session"]["id"])
        assert api.post(f"{base}/api/v1/events/{SLUG}/releases", json={"name": "XSS"}, timeout=10).status_code == 201
        # A person whose own name is a payload, and chat, questions and a report full of payloads.
        attendee = requests.Session()
        email = "mallory@example.org"
        token_field = _csrf(attendee, f"{base}/register")
        response = attendee.post(f"{base}/register", timeout=10, allow_redirects=False, data={
            "csrf_token": token_field, "name": '<img src=x onerror=window.__canary("name")>', "email": email,
            "password": "browser-password-1", "privacy_consent": "y"})  # the demo publishes a privacy notice
        assert response.status_code == 302, response.text[:300]
        # Registering does not log in (it answers alike for taken addresses); the login does.
        token_field = _csrf(attendee, f"{base}/login")
        response = attendee.post(f"{base}/login", timeout=10, allow_redirects=False, data={
            "csrf_token": token_field, "email": email, "password": "browser-password-1"})
        assert response.status_code == 302, response.text[:300]
        token_field = _csrf(attendee, f"{base}/events/{SLUG}/")
        attendee.post(f"{base}/events/{SLUG}/register", data={"csrf_token": token_field}, timeout=10)
        mallory_token = attendee.post(f"{base}/api/v1/auth/token", timeout=10, json={
            "email": email, "password": "browser-password-1"}).json()["token"]
        chat_session = session_ids[0]
        room = f"session:{chat_session}"
        client = LiveClient(base, mallory_token)
        for target in (f"lobby:{SLUG}", room):
            assert client.call("join", {"room": target})["ok"] is True
            for index, payload in enumerate(payloads):
                ack = client.call("chat:send", {"room": target, "text": payload, "client_id": f"x{index}"})
                assert ack["ok"] is True, ack
        for index, payload in enumerate(XSS[:10]):
            ack = client.call("qa:ask", {"room": room, "text": payload[:500], "client_id": f"q{index}"})
            assert ack["ok"] is True, ack
        reporter = LiveClient(base, server.tokens[0])
        assert reporter.call("join", {"room": f"lobby:{SLUG}"})["ok"] is True
        history = reporter.call("chat:history", {"room": f"lobby:{SLUG}"})["messages"]
        for message in history[-5:]:
            reporter.call("chat:report", {"message_id": message["id"], "reason": XSS[1]})
        reporter.close()
        client.close()
        yield Seeded(server, session_ids, speaker_ids, chat_session, email)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_service("Chromium", Path(CHROMIUM).exists(), "Debian package chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _pages(seeded: Seeded) -> dict[str, list[str]]:
    event, manage = f"/events/{SLUG}", f"/manage/events/{SLUG}"
    public = [f"{event}/", f"{event}/agenda", f"{event}/agenda/now", f"{event}/speakers", f"{event}/presentations",
              *[f"{event}/sessions/{i}" for i in seeded.session_ids[:8]],
              *[f"{event}/speakers/{i}" for i in seeded.speaker_ids]]
    attendee = [f"{event}/lobby", f"{event}/sessions/{seeded.chat_session}", f"{event}/my-agenda", "/account"]
    organiser = [f"{manage}/", f"{manage}/people", f"{manage}/speakers", f"{manage}/live", f"{manage}/agenda",
                 f"{manage}/presentations", f"{manage}/outbox",
                 *[f"{manage}/agenda/sessions/{i}" for i in seeded.session_ids[:4]],
                 *[f"{event}/speakers/{i}/edit" for i in seeded.speaker_ids[:3]],
                 f"{event}/lobby", f"{event}/sessions/{seeded.chat_session}"]
    return {"anonymous": public, "attendee": attendee, "organiser": organiser}


LIVE_PAGES = ("/lobby", "/sessions/")


@pytest.mark.parametrize("bypass_csp", [True, False], ids=["escaping-only", "with-csp"])
def test_no_payload_ever_runs_in_the_browser(bypass_csp: bool, seeded: Seeded, chromium: Any,
                                             evidence: Evidence) -> None:
    base = seeded.server.url
    fired: list[str] = []
    violations: list[str] = []
    visited = 0
    for who, urls in _pages(seeded).items():
        context = chromium.new_context(bypass_csp=bypass_csp, locale="de-DE")
        context.set_default_timeout(15_000)
        context.add_init_script(CANARY_SCRIPT)
        page = context.new_page()
        page.on("dialog", lambda dialog: (fired.append(f"dialog {dialog.message}"), dialog.dismiss()))
        if who != "anonymous":
            email = seeded.attendee_email if who == "attendee" else "orga@demo.invalid"
            password = "browser-password-1" if who == "attendee" else DEMO_PASSWORD
            page.goto(f"{base}/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("main button[type=submit]")
        for url in urls:
            response = page.goto(base + url)
            assert response is not None and response.status < 500, (url, response and response.status)
            page.wait_for_load_state("networkidle")
            if any(part in url for part in LIVE_PAGES) and who != "anonymous":
                # The chat history arrives over the socket and is rendered by live.js: wait until it shows.
                page.wait_for_function("document.body.innerText.includes('__canary')", timeout=15_000)
            body = page.content()
            assert TEMPLATE_RESULT not in page.inner_text("body"), url
            fired.extend(f"{who} {url}: {hit}" for hit in page.evaluate("window.__xss"))
            violations.extend(f"{who} {url}: {v}" for v in page.evaluate("window.__csp"))
            visited += 1
            evidence.add("browser_pages")
            assert body
        if bypass_csp and who == "anonymous":
            # Positive control: the canary does catch a payload that the page failed to escape.
            page.set_content(XSS[1] + XSS[0])
            page.wait_for_function("window.__xss.length >= 2", timeout=5_000)
            assert sorted(page.evaluate("window.__xss")) == ["s1", "s2"]
        context.close()
    evidence.add("variants", visited * len(XSS))
    evidence.add("canary_executions", len(fired))
    if fired:
        evidence.failures.extend(fired[:20])
    if not bypass_csp:
        evidence.add("csp_violations", len(violations))
    assert fired == []
    assert violations == []
    assert visited >= 30
