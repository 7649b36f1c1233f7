"""Our public pages side by side with pretalx's: the same day (3 rooms, 40 talks), in Chromium, at a laptop's
1366x900 and a phone's 390x844, in German; composed with Pillow into one PNG per page and size.

    .venv/bin/python bench/screenshots_compare.py            # writes test-artifacts/screenshots/compare/*.png

Both sides are served as in bench/pretalx_compare.py (pretalx installed into bench/.pretalx-venv on first use,
everything else in a temporary folder, both servers stopped at the end). Each picture shows what the visitor
sees first (the window) and, below a line, the page's top two window heights in full, left pretalx, right ours.
Not part of `make test`: pretalx's install takes minutes.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from agenda_bench import PROJECT_ROOT  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from pretalx_compare import PRETALX_VERSION, SLUG, SetupFailed, both_servers  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SIZES = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
OUT = PROJECT_ROOT / "test-artifacts" / "screenshots" / "compare"
GAP = 24
LABEL_HEIGHT = 36
BACKGROUND = (218, 222, 228)


def pages(talk_code: str, session_id: int) -> list[tuple[str, str, str]]:
    """(name, pretalx path, our path): the schedule, a talk, the speakers."""
    return [
        ("schedule", f"/{SLUG}/schedule/", f"/events/{SLUG}/agenda"),
        ("talk", f"/{SLUG}/talk/{talk_code}/", f"/events/{SLUG}/sessions/{session_id}"),
        ("speakers", f"/{SLUG}/speaker/", f"/events/{SLUG}/speakers"),
    ]


def capture(browser: Any, url: str, viewport: dict[str, int]) -> Image.Image:
    """The page's top two window heights as a full-page screenshot (the first window is what one sees first)."""
    context = browser.new_context(viewport=viewport, locale="de-DE", extra_http_headers={"Accept-Language": "de"},
                                  device_scale_factor=1)
    try:
        page = context.new_page()
        page.goto(url, wait_until="networkidle")
        page.wait_for_timeout(300)  # pretalx's schedule widget lays itself out after its data arrives
        clip = {"x": 0, "y": 0, "width": viewport["width"], "height": viewport["height"] * 2}
        image = Image.open(io.BytesIO(page.screenshot(full_page=True, clip=clip))).convert("RGB")
        height = page.evaluate("() => document.documentElement.scrollHeight")
        return image.crop((0, 0, image.width, min(image.height, max(height, viewport["height"]))))
    finally:
        context.close()


def side_by_side(left: Image.Image, right: Image.Image, *, labels: tuple[str, str], fold: int) -> Image.Image:
    """Both pictures next to each other on a grey ground, each under its label, the fold marked in red."""
    width = left.width + right.width + 3 * GAP
    height = LABEL_HEIGHT + max(left.height, right.height) + 2 * GAP
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=20)
    for x, image, label in ((GAP, left, labels[0]), (2 * GAP + left.width, right, labels[1])):
        draw.text((x, GAP // 2), label, fill=(27, 31, 36), font=font)
        canvas.paste(image, (x, LABEL_HEIGHT + GAP // 2))
        if image.height > fold:
            y = LABEL_HEIGHT + GAP // 2 + fold
            draw.line((x - 8, y, x + image.width + 8, y), fill=(200, 30, 30), width=2)
    return canvas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the pictures (default {OUT})")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    written: list[Path] = []
    try:
        with both_servers() as servers, sync_playwright() as playwright:
            print(f"servers ready after {time.monotonic() - started:.0f} s", flush=True)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            args.out.mkdir(parents=True, exist_ok=True)
            theirs_base = f"http://127.0.0.1:{servers.pretalx_port}"
            ours_base = f"http://127.0.0.1:{servers.our_port}"
            for name, their_path, our_path in pages(servers.talk_code, servers.session_id):
                for size, viewport in SIZES.items():
                    left = capture(browser, theirs_base + their_path, viewport)
                    right = capture(browser, ours_base + our_path, viewport)
                    picture = side_by_side(left, right, fold=viewport["height"], labels=(
                        f"pretalx {PRETALX_VERSION}: {their_path}", f"ours: {our_path}"))
                    path = args.out / f"{name}-{size}.png"
                    picture.save(path, optimize=True)
                    written.append(path)
                    print(f"{path.relative_to(PROJECT_ROOT)}  ({picture.width}x{picture.height})", flush=True)
            browser.close()
    except SetupFailed as error:
        print(error)
        return 2
    print(f"{len(written)} pictures in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
