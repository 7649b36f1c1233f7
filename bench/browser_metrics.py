"""What people wait for: page metrics measured in Chromium against the real server with the demo data.

For the agenda, a session page and the other main pages, as a visitor and as a logged-in attendee (who also
loads the live layer), each in a fresh browser context (cold cache):

- first contentful paint (Paint Timing),
- interactive: the later of DOMContentLoaded end and the end of the last long task (> 50 ms) seen until the
  load event (Navigation Timing + Long Tasks API); also load event end, and for live pages the moment the
  chat panel reports "connected",
- bytes transferred: the sum of CDP `Network.loadingFinished` encodedDataLength (headers and bodies, as sent
  over the wire) and the number of requests.

Goals: every page under 200 KB and interactive in under 1 s.

    .venv/bin/python bench/browser_metrics.py            # 5 cold loads per page, medians
    .venv/bin/python bench/browser_metrics.py --smoke    # agenda and session page once (used by the tests)
    .venv/bin/python bench/browser_metrics.py --json     # also one JSON line with all figures

Runs `conference run` (eventlet) in a temporary instance; talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.support.server import running_server  # noqa: E402 - the project root is on the path only now

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SLUG = "digitalkonferenz-2027"
ATTENDEE = "teilnehmer00001@demo.invalid"
PASSWORD = "demo-passwort-2027"
GOAL_BYTES = 200 * 1024
GOAL_INTERACTIVE_MS = 1000.0

SMOKE_PAGES = {"agenda": f"/events/{SLUG}/agenda", "session": f"/events/{SLUG}/sessions/3"}
PAGES = {**SMOKE_PAGES, "speakers": f"/events/{SLUG}/speakers", "presentations": f"/events/{SLUG}/presentations",
         "event": f"/events/{SLUG}/", "my-agenda": f"/events/{SLUG}/my-agenda"}

# Installed before any page script runs: records long tasks from the very start of the page.
LONG_TASKS = """
window.__longTasks = [];
try {
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__longTasks.push(e.startTime + e.duration);
  }).observe({type: "longtask", buffered: true});
} catch (e) {}
"""

READ_TIMINGS = """() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    const tasks = (window.__longTasks || []).filter(end => end <= nav.loadEventEnd + 1);
    return {fcp: fcp ? fcp.startTime : null, dom_interactive: nav.domInteractive,
            dcl_end: nav.domContentLoadedEventEnd, load_end: nav.loadEventEnd,
            interactive: Math.max(nav.domContentLoadedEventEnd, ...tasks), long_tasks: tasks.length,
            transfer_size: performance.getEntriesByType("resource").reduce((s, r) => s + r.transferSize,
                                                                          nav.transferSize)};
}"""


def login(browser: Any, base_url: str) -> dict[str, Any]:
    """Storage state (the login cookie) of the demo attendee, so each measured load starts cold but logged in."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base_url}/login")
    page.fill("input[name=email]", ATTENDEE)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    state = context.storage_state()
    context.close()
    return state


def measure(browser: Any, url: str, storage_state: dict[str, Any] | None) -> dict[str, Any]:
    """One cold load of `url` in a fresh context; figures in milliseconds and bytes."""
    context = browser.new_context(storage_state=storage_state, viewport={"width": 1280, "height": 900},
                                  locale="de-DE")
    context.add_init_script(LONG_TASKS)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    sizes: list[float] = []
    cdp.on("Network.loadingFinished", lambda event: sizes.append(float(event["encodedDataLength"])))
    page.goto(url, wait_until="load")
    live_ms = None
    if page.locator("[data-live-room]").count():
        page.wait_for_selector("[data-live-status].live-status-ok", timeout=10_000)
        live_ms = page.evaluate("() => performance.now()")
    page.wait_for_load_state("networkidle")
    figures = page.evaluate(READ_TIMINGS)
    context.close()
    figures.update(bytes=int(sum(sizes)), requests=len(sizes), live_connected=live_ms)
    return figures


def median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return statistics.median(values) if values else None


def run(pages: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="browser-metrics-") as tmp, \
            running_server(Path(tmp) / "instance", "eventlet", demo_attendees=20) as server, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        states = {"visitor": None, "attendee": login(browser, server.url)}
        measure(browser, server.url + "/login", None)  # warm the server (templates, first queries)
        for who, state in states.items():
            for name, path in pages.items():
                if who == "visitor" and name == "my-agenda":
                    continue
                runs = [measure(browser, server.url + path, state) for _ in range(repeats)]
                results.append({"page": name, "who": who, "runs": repeats,
                                **{key: median(runs, key) for key in
                                   ("fcp", "dom_interactive", "dcl_end", "interactive", "load_end",
                                    "live_connected", "bytes", "transfer_size", "requests", "long_tasks")}})
        browser.close()
    return results


def report(results: list[dict[str, Any]]) -> bool:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    print(f"{'page':<14}{'who':<10}{'FCP ms':>8}{'inter. ms':>10}{'load ms':>9}{'live ms':>9}"
          f"{'KB':>8}{'req':>5}  goals")
    ok = True
    for r in results:
        meets = r["bytes"] < GOAL_BYTES and r["interactive"] < GOAL_INTERACTIVE_MS
        ok = ok and meets
        print(f"{r['page']:<14}{r['who']:<10}{ms(r['fcp']):>8}{ms(r['interactive']):>10}{ms(r['load_end']):>9}"
              f"{ms(r['live_connected']):>9}{r['bytes'] / 1024:>8.1f}{int(r['requests']):>5}  "
              f"{'ok' if meets else 'MISSED'}")
    print(f"goals: under {GOAL_BYTES // 1024} KB and interactive under {GOAL_INTERACTIVE_MS:.0f} ms per page: "
          f"{'all met' if ok else 'NOT all met'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="agenda and session page, one load each")
    parser.add_argument("--repeats", type=int, default=5, help="cold loads per page (median reported)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    pages, repeats = (SMOKE_PAGES, 1) if args.smoke else (PAGES, max(1, args.repeats))
    results = run(pages, repeats)
    ok = report(results)
    if args.json:
        print(json.dumps({"results": results, "goals_met": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
