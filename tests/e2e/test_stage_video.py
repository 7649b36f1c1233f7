"""The stage with a plain video stream (HLS) and the event's header image, in Chromium.

The stream is a real fragmented MP4 (H.264) recorded by Chromium's own MediaRecorder from a canvas at the start of
the module, split into an init segment and a media segment and served under the stream's https address by the test
(Playwright answers those requests in the browser; nothing leaves the machine). The page runs under its real
Content-Security-Policy. Where the browser plays HLS itself (Chromium 141 and later) the page must not load hls.js;
in a browser without it (modelled by removing HLS from `canPlayType`, as in Firefox) the vendored hls.js is
fetched, attaches to the <video>, and fetches the playlist and both segments; in both the video decodes frames.
"Bild-in-Bild" is offered for the native <video> (never for an iframe player) and works; theatre mode too; the
header image shows as a banner on the public pages and leaves the chat input on screen on the stage."""

from __future__ import annotations

import base64
import io
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login_in_browser, run_axe, serve_external, shot
from tests.e2e.test_stage import LAPTOP, PHONE, assert_inside_viewport, box
from tests.support.server import PROJECT_ROOT, RunningServer, run_cli, running_server, server_env

pytestmark = pytest.mark.browser

SLUG = "buehne-video"
ATTENDEE = "teilnehmer00001@demo.invalid"
STREAM_ORIGIN = "https://video.example.org"
PLAYLIST = f"{STREAM_ORIGIN}/live/buehne.m3u8"
HLS_LIBRARY = "/static/vendor/hls.js/hls.light.min.js"
STAGE: dict[str, int] = {}

#: Two seconds of a changing canvas, recorded as fragmented MP4 (ftyp, moov, then moof/mdat pairs).
RECORD = """async () => {
  const canvas = document.createElement('canvas'); canvas.width = 320; canvas.height = 180;
  document.body.appendChild(canvas);
  const g = canvas.getContext('2d'); let n = 0;
  const timer = setInterval(() => { g.fillStyle = `hsl(${(n++ * 20) % 360} 70% 40%)`; g.fillRect(0, 0, 320, 180);
    g.fillStyle = '#fff'; g.font = '40px sans-serif'; g.fillText(String(n), 20, 100); }, 40);
  const recorder = new MediaRecorder(canvas.captureStream(25), {mimeType: 'video/mp4;codecs=avc1',
                                                                 videoBitsPerSecond: 300000});
  const chunks = []; recorder.ondataavailable = (e) => chunks.push(e.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start(); await new Promise((resolve) => setTimeout(resolve, 2000)); recorder.stop(); await stopped;
  clearInterval(timer);
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let text = ''; for (const b of bytes) { text += String.fromCharCode(b); } return btoa(text);
}"""


def split_fragmented_mp4(data: bytes) -> tuple[bytes, bytes]:
    """(init segment: ftyp + moov, media segment: every moof + mdat) of a fragmented MP4."""
    init, media, offset = b"", b"", 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        assert size >= 8, (kind, size)
        part = data[offset:offset + size]
        if kind in (b"ftyp", b"moov"):
            init += part
        elif kind in (b"moof", b"mdat"):
            media += part
        offset += size
    assert init.startswith(data[:8]) and b"moov" in init and media[4:8] == b"moof", "not a fragmented MP4"
    return init, media


def arrange_video_session() -> None:
    """In a process of its own against the test instance: an event of today with a session live now in a room
    whose stream is an HLS address, a header image set through the branding service, the demo attendee
    registered."""
    from PIL import Image, ImageDraw
    from sqlalchemy import select

    from conference import create_app
    from conference.agenda import services as agenda
    from conference.agenda.releases import publish_release
    from conference.agenda.rooms import create_room
    from conference.auth.models import User
    from conference.core.db import utcnow
    from conference.events import branding
    from conference.events import services as events
    from conference.extensions import db

    picture = Image.new("RGB", (2000, 700), (20, 60, 90))
    ImageDraw.Draw(picture).rectangle((0, 300, 2000, 400), fill=(240, 180, 40))
    header = io.BytesIO()
    picture.save(header, format="JPEG")
    header.seek(0)
    app = create_app()
    with app.app_context(), app.test_request_context():
        now = utcnow().replace(second=0, microsecond=0)
        event = events.create_event(slug=SLUG, title="Bühne mit Video", start_date=(now - timedelta(days=1)).date(),
                                    end_date=(now + timedelta(days=1)).date(), timezone="UTC", is_published=True)
        branding.update_branding(event, accent_color="#1d4f91", header_image=header, actor=None)
        room = create_room(event, name="Videobühne", stream_kind="hls", stream_url=PLAYLIST, actor=None)
        session = agenda.create_session(event, title="Bewegte Bilder aus der Region", abstract="Ein Video.",
                                        actor=None)
        agenda.schedule_session(session, room=room, start_at=now - timedelta(minutes=10),
                                end_at=now + timedelta(minutes=50), actor=None)
        publish_release(event, name="Stand heute", actor=None)
        user = db.session.scalar(select(User).where(User.email == ATTENDEE))
        assert user is not None
        events.register_attendee(event, user=user)
        db.session.commit()
        print(session.id)  # noqa: T201 - read by the fixture


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    instance = tmp_path_factory.mktemp("stage-video") / "instance"
    instance.mkdir(parents=True)
    env = server_env(instance, "eventlet")
    run_cli(["demo", "--attendees", "3"], env)
    arranged = subprocess.run(
        [sys.executable, "-c", "from tests.e2e.test_stage_video import arrange_video_session as a; a()"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=True)
    STAGE["session"] = int(arranged.stdout.split()[-1])
    with running_server(instance, "eventlet", demo_attendees=None) as running:
        yield running


@pytest.fixture(scope="module")
def hls_media(browser: Any) -> dict[str, bytes]:
    """The playlist, init segment and media segment of a two-second H.264 stream recorded by this Chromium."""
    context = browser.new_context()
    page = context.new_page()
    page.set_content("<!doctype html><title>Aufnahme</title><body></body>")
    assert page.evaluate("() => MediaRecorder.isTypeSupported('video/mp4;codecs=avc1')"), \
        "this Chromium records no H.264 MP4"
    init, media = split_fragmented_mp4(base64.b64decode(page.evaluate(RECORD)))
    context.close()
    playlist = ("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n"
                "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nsegment0.m4s\n"
                "#EXT-X-ENDLIST\n")
    return {"buehne.m3u8": playlist.encode(), "init.mp4": init, "segment0.m4s": media}


def stage_url(server: RunningServer) -> str:
    return f"{server.url}/events/{SLUG}/sessions/{STAGE['session']}"


def serve_stream(page: Any, media: dict[str, bytes]) -> list[str]:
    """Answer the stream's addresses with the recorded files (CORS as a real stream server sends it); returns
    the list the fetched addresses are written to."""
    fetched: list[str] = []
    types = {"m3u8": "application/vnd.apple.mpegurl", "mp4": "video/mp4", "m4s": "video/iso.segment"}
    serve_external(page, STREAM_ORIGIN, "")

    def answer(route: Any) -> None:
        name = route.request.url.rsplit("/", 1)[-1].split("?")[0]
        fetched.append(name)
        if name not in media:
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, body=media[name], headers={
            "Content-Type": types[name.rsplit(".", 1)[-1]], "Access-Control-Allow-Origin": "*"})

    page.unroute(f"{STREAM_ORIGIN}**")
    page.route(f"{STREAM_ORIGIN}/**", answer)
    return fetched


WITHOUT_NATIVE_HLS = """(() => {
  const original = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return /mpegurl/i.test(type) ? '' : original.call(this, type);
  };
})();"""


@pytest.mark.parametrize("browser_hls", ["native", "without"])
def test_hls_stream_plays_hls_js_loaded_only_when_needed(new_page, live_server, hls_media, screenshot_dir,
                                                         browser_hls: str) -> None:
    page = new_page(viewport=LAPTOP)  # the page's own Content-Security-Policy applies
    if browser_hls == "without":
        page.add_init_script(WITHOUT_NATIVE_HLS)
    login_in_browser(page, live_server.url, ATTENDEE)
    scripts: list[str] = []
    page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
    fetched = serve_stream(page, hls_media)
    page.goto(stage_url(live_server))
    expect(page.locator(".stream-consent-button")).to_be_visible()
    assert not any(HLS_LIBRARY in url for url in scripts)  # nothing before the consent
    assert fetched == []
    native = page.evaluate("() => document.createElement('video').canPlayType('application/vnd.apple.mpegurl')")
    assert (native != "") == (browser_hls == "native"), native

    page.locator(".stream-consent-button").click()
    video = page.locator("video.stream-video")
    expect(video).to_be_visible()
    page.wait_for_function("() => document.querySelector('video.stream-video').readyState >= 2", timeout=15_000)
    state = video.evaluate("v => ({width: v.videoWidth, height: v.videoHeight, duration: v.duration, "
                           "src: v.currentSrc, error: v.error && v.error.code})")
    assert (state["width"], state["height"], state["error"]) == (320, 180, None), state
    assert 1.5 < state["duration"] < 3, state
    assert {"buehne.m3u8", "init.mp4", "segment0.m4s"} <= set(fetched), fetched
    uses_library = any(HLS_LIBRARY in url for url in scripts)
    assert uses_library == (browser_hls == "without"), scripts
    if uses_library:
        assert state["src"].startswith("blob:")  # hls.js attached through Media Source Extensions
        assert page.evaluate("() => typeof window.Hls === 'function' && window.Hls.version") == "1.7.4"
    else:
        assert state["src"] == PLAYLIST and page.evaluate("() => typeof window.Hls") == "undefined"

    # The stage check holds with a video player too: 16:9, chat input on screen, chat beside the player.
    player = box(page, "video.stream-video")
    assert abs(player["width"] / player["height"] - 16 / 9) < 0.02, player
    assert_inside_viewport(page, "textarea[id^=chat-text-]", LAPTOP)
    assert box(page, ".stage-side")["x"] > player["x"] + player["width"]
    shot(page, screenshot_dir, f"stage-video-{browser_hls}-laptop")


def test_picture_in_picture_offered_for_video_and_works(new_page, live_server, hls_media) -> None:
    page = new_page(viewport=LAPTOP)
    login_in_browser(page, live_server.url, ATTENDEE)
    serve_stream(page, hls_media)
    page.goto(stage_url(live_server))
    pip = page.locator("[data-stage-pip]")
    expect(pip).to_be_hidden()  # not before there is a video
    assert page.evaluate("() => document.pictureInPictureEnabled") is True
    page.locator(".stream-consent-button").click()
    page.wait_for_function("() => document.querySelector('video.stream-video').readyState >= 1")
    expect(pip).to_be_visible()
    expect(pip).to_have_text("Bild-in-Bild")
    pip.click()
    page.wait_for_function("() => document.pictureInPictureElement === document.querySelector('video.stream-video')")
    pip.click()
    page.wait_for_function("() => document.pictureInPictureElement === null")

    theatre = page.locator("[data-stage-theatre]")
    theatre.click()
    expect(theatre).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator(".event-banner")).to_be_hidden()
    player = box(page, "video.stream-video")
    assert abs(player["width"] / player["height"] - 16 / 9) < 0.02, player
    assert_inside_viewport(page, "textarea[id^=chat-text-]", LAPTOP)
    theatre.click()
    expect(page.locator(".site-header")).to_be_visible()


@pytest.mark.parametrize(("viewport", "name"), [(LAPTOP, "laptop"), (PHONE, "phone")])
def test_header_image_banner_on_public_pages_and_stage_still_fits(new_page, live_server, hls_media, screenshot_dir,
                                                                  viewport, name) -> None:
    page = new_page(viewport=viewport, bypass_csp=True)
    page.goto(f"{live_server.url}/events/{SLUG}/agenda")
    banner = page.locator(".event-banner img")
    expect(banner).to_be_visible()
    assert banner.evaluate("img => img.complete && img.naturalWidth") == 1600
    banner_box = box(page, ".event-banner img")
    header_box = box(page, ".site-header")
    assert banner_box["y"] >= header_box["y"] + header_box["height"] - 1  # under the header, across the page
    assert banner_box["width"] == viewport["width"] and 70 <= banner_box["height"] <= 161, banner_box
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, screenshot_dir, f"banner-agenda-{name}")
    assert run_axe(page) == []

    login_in_browser(page, live_server.url, ATTENDEE)
    serve_stream(page, hls_media)
    page.goto(stage_url(live_server))
    page.locator(".stream-consent-button").click()
    expect(page.locator("video.stream-video")).to_be_visible()
    if viewport is LAPTOP:
        expect(banner).to_be_visible()  # a thin strip on the stage
        assert box(page, ".event-banner img")["height"] <= 41
    else:
        expect(page.locator(".event-banner")).to_be_hidden()  # the phone's height belongs to player and chat
    assert page.evaluate("() => window.scrollY") == 0
    assert_inside_viewport(page, "textarea[id^=chat-text-]", viewport)
    assert_inside_viewport(page, ".chat-form button[type=submit]", viewport)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, screenshot_dir, f"banner-stage-{name}")
    assert run_axe(page) == []


def test_header_image_uploaded_through_the_branding_form(new_page, live_server, screenshot_dir) -> None:
    from PIL import Image

    picture = io.BytesIO()
    Image.linear_gradient("L").resize((1200, 300)).convert("RGB").save(picture, format="PNG")
    organiser = new_page(viewport=LAPTOP, bypass_csp=True)
    login_in_browser(organiser, live_server.url, "orga@demo.invalid")
    organiser.goto(f"{live_server.url}/manage/events/digitalkonferenz-2027/branding")
    organiser.set_input_files("#header_image", files=[{"name": "notes.png", "mimeType": "image/png",
                                                       "buffer": b"not a picture"}])
    with organiser.expect_navigation():
        organiser.click("main button[type=submit]")
    expect(organiser.locator("#header_image-error")).to_contain_text(re.compile(r"PNG.*JPEG.*WebP"))
    organiser.set_input_files("#header_image", files=[{"name": "kopf.png", "mimeType": "image/png",
                                                       "buffer": picture.getvalue()}])
    with organiser.expect_navigation():
        organiser.click("main button[type=submit]")
    expect(organiser.locator(".flash-success")).to_be_visible()
    expect(organiser.locator("img.brand-header-preview")).to_be_visible()
    assert run_axe(organiser) == []
    organiser.goto(f"{live_server.url}/events/digitalkonferenz-2027/")
    expect(organiser.locator(".event-banner img")).to_be_visible()
    shot(organiser, screenshot_dir, "banner-event-laptop")
    organiser.goto(f"{live_server.url}/manage/events/digitalkonferenz-2027/branding")
    organiser.check("#remove_header_image")
    with organiser.expect_navigation():
        organiser.click("main button[type=submit]")
    organiser.goto(f"{live_server.url}/events/digitalkonferenz-2027/")
    expect(organiser.locator(".event-banner")).to_have_count(0)
