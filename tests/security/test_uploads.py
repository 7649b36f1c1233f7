"""Uploads: polyglots, disguised types, pixel floods, multipart abuse (many parts, huge preambles), quotas.

Slides go through the streamed API upload, photos through the profile form. A refused upload answers 4xx
and leaves no row and no file (not even a temporary one) behind.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.fixtures.presentations import jpeg_with_exif, pdf_bytes, png_header_only, upload, zip_bytes
from tests.security.conftest import Evidence, StateGuard, World, assert_refused

HTML = b"<!doctype html><html><body><script>window.__canary('upload')</script></body></html>"


def _slides(world: World, name: str, data: bytes) -> Any:
    return upload(world.app.test_client(), world.own_session.id, name, data, token=world.tokens["speaker"])


def _raw(world: World, body: bytes, content_type: str) -> Any:
    return world.app.test_client().post(f"/api/v1/sessions/{world.own_session.id}/presentations", data=body,
                                        headers={"Authorization": f"Bearer {world.tokens['speaker']}",
                                                 "Content-Type": content_type})


SLIDE_REFUSALS: list[tuple[str, str, bytes]] = [
    ("html as pdf", "folien.pdf", HTML),
    ("svg as pdf", "folien.pdf", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("html extension", "folien.html", HTML),
    ("double extension", "folien.html.pdf", pdf_bytes()),
    ("exe inside", "setup.exe.pdf", pdf_bytes()),
    ("zip as pptx", "folien.pptx", zip_bytes([("evil.html", HTML)])),
    ("jar polyglot as pptx", "folien.pptx", zip_bytes([("META-INF/MANIFEST.MF", b"Main-Class: X\n")])),
    ("gif/js polyglot as pdf", "folien.pdf", b"GIF89a/*\x00\x00*/=window.__canary('gif');"),
    ("empty", "folien.pdf", b""),
    ("nul in name", "fo\x00lien.pdf", pdf_bytes()),
    ("bidi in name", "folien\u202efdp.exe", pdf_bytes()),
    ("traversal name", "../../../../etc/passwd", pdf_bytes()),
    ("no extension", "folien", pdf_bytes()),
]


def test_disguised_and_polyglot_slides_are_refused(world: World, guard: StateGuard, evidence: Evidence) -> None:
    guard.take()
    for what, name, data in SLIDE_REFUSALS:
        response = _slides(world, name, data)
        assert_refused(response, (400, 415, 422), evidence, what)  # 422: the file is refused
        guard.assert_unchanged(what)


def test_pdf_html_polyglot_is_only_ever_served_as_an_attachment(world: World, evidence: Evidence) -> None:
    """A real PDF that also parses as HTML may be a PDF; it must never be rendered by the browser."""
    polyglot = pdf_bytes().replace(b"%PDF-1.4", b"%PDF-1.4\n%<html><script>window.__canary('pdf')</script>", 1)
    response = _slides(world, "folien.pdf", polyglot)
    evidence.add("variants")
    if response.status_code == 201:
        deck = response.get_json()["id"]
        download = world.app.test_client().get(
            f"/api/v1/sessions/{world.own_session.id}/presentations/{deck}/download",
            headers={"Authorization": f"Bearer {world.tokens['speaker']}"})
        download.close()
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in download.headers["Content-Security-Policy"]
    else:
        assert_refused(response, 422, evidence, "pdf/html polyglot")


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "XyZ", preamble: bytes = b"") -> bytes:
    body = bytearray(preamble)
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: application/pdf\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body)


def test_multipart_abuse_is_refused(world: World, guard: StateGuard, evidence: Evidence) -> None:
    pdf = pdf_bytes()
    cases: list[tuple[str, bytes, str]] = [
        ("many parts", _multipart([(f"f{i}", None, b"x") for i in range(5000)] + [("file", "a.pdf", pdf)]),
         "multipart/form-data; boundary=XyZ"),
        ("huge preamble", _multipart([("file", "a.pdf", pdf)], preamble=b"A" * (3 * 1024 * 1024)),
         "multipart/form-data; boundary=XyZ"),
        ("two files", _multipart([("file", "a.pdf", pdf), ("file", "b.pdf", pdf)]),
         "multipart/form-data; boundary=XyZ"),
        ("wrong field", _multipart([("upload", "a.pdf", pdf)]), "multipart/form-data; boundary=XyZ"),
        ("no boundary", _multipart([("file", "a.pdf", pdf)]), "multipart/form-data"),
        ("boundary too long", _multipart([("file", "a.pdf", pdf)], boundary="B" * 300),
         "multipart/form-data; boundary=" + "B" * 300),
        ("unterminated", _multipart([("file", "a.pdf", pdf)])[:-10], "multipart/form-data; boundary=XyZ"),
        ("huge field", _multipart([("csrf_token", None, b"x" * 100_000), ("file", "a.pdf", pdf)]),
         "multipart/form-data; boundary=XyZ"),
        ("huge part header", b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nX: "
         + b"h" * 3_000_000 + b"\r\n\r\n" + pdf + b"\r\n--XyZ--\r\n", "multipart/form-data; boundary=XyZ"),
        ("json instead", b'{"file": "JVBERi0="}', "application/json"),
        ("urlencoded", b"file=%25PDF-1.4", "application/x-www-form-urlencoded"),
    ]
    guard.take()
    for what, body, content_type in cases:
        response = _raw(world, body, content_type)
        assert_refused(response, (400, 413), evidence, what)
        guard.assert_unchanged(what)


def test_upload_quota_per_person_holds(world: World, guard: StateGuard, evidence: Evidence) -> None:
    deck = pdf_bytes()
    world.app.config["PRESENTATION_USER_QUOTA_BYTES"] = len(deck) * 2 + 10
    assert _slides(world, "v1.pdf", deck).status_code == 201
    assert _slides(world, "v2.pdf", deck).status_code == 201
    guard.take()
    response = _slides(world, "v3.pdf", deck)
    assert_refused(response, 413, evidence, "over quota")
    guard.assert_unchanged("over quota")


def test_size_limit_refused_before_reading_the_body(world: World, guard: StateGuard, evidence: Evidence) -> None:
    world.app.config["PRESENTATION_MAX_BYTES"] = 50_000
    guard.take()
    response = _slides(world, "gross.pdf", pdf_bytes() + b"%" + b"0" * 60_000)
    assert_refused(response, 413, evidence, "over size")
    guard.assert_unchanged("over size")


def _photo(world: World, data: bytes, name: str) -> Any:
    # The body is built here as bytes: the test client would spool a large one to an unclosed temporary file.
    fields = [("csrf_token", None, world.csrf("speaker").encode()), ("name", None, b"Sam Speaker"),
              ("bio", None, b""), ("links", None, b""), ("photo", name, data)]
    return world.client("speaker").post(f"/events/alpha/speakers/{world.own_profile.id}/edit",
                                        data=_multipart(fields), content_type="multipart/form-data; boundary=XyZ")


def _gif_js_polyglot() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (10, 10), (1, 2, 3)).save(image, format="GIF")
    return image.getvalue() + b"/*--><script>window.__canary('gif')</script>"


def test_hostile_photos_are_refused(world: World, guard: StateGuard, evidence: Evidence) -> None:
    world.csrf("speaker")
    guard.take()
    for what, data, name in (
            ("pixel flood png", png_header_only(100_000, 100_000), "bild.png"),
            ("pixel flood wide", png_header_only(1_000_000, 30), "bild.png"),
            ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__canary(1)"/>', "bild.svg"),
            ("html as jpeg", HTML, "bild.jpg"),
            ("truncated jpeg", jpeg_with_exif()[:200], "bild.jpg"),
            ("pdf as png", pdf_bytes(), "bild.png"),
            ("too big", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 10), "bild.jpg"),
            ("far too big", b"\xff\xd8\xff" + b"0" * (8 * 1024 * 1024), "bild.jpg")):
        response = _photo(world, data, name)
        assert_refused(response, 413 if what == "far too big" else (400, 413), evidence, what)
        guard.assert_unchanged(what)


def test_polyglot_photo_is_reencoded_without_the_payload(world: World, evidence: Evidence) -> None:
    response = _photo(world, _gif_js_polyglot(), "bild.gif")
    evidence.add("variants")
    assert response.status_code == 303
    photo = world.app.test_client().get(f"/events/alpha/speakers/{world.own_profile.id}/photo")
    data = photo.data
    photo.close()
    assert photo.status_code == 200 and data.startswith(b"\xff\xd8") and b"__canary" not in data
    assert photo.headers["Content-Type"] == "image/jpeg" and photo.headers["X-Content-Type-Options"] == "nosniff"
    exif_response = _photo(world, jpeg_with_exif(), "bild.jpg")
    assert exif_response.status_code == 303
    photo = world.app.test_client().get(f"/events/alpha/speakers/{world.own_profile.id}/photo")
    data = photo.data
    photo.close()
    assert b"secret artist" not in data and b"secret description" not in data
