"""Event branding: accent colour checked for WCAG AA contrast, logo re-encoded, footer links; applied to pages."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from conference.core.contrast import contrast_ratio
from conference.core.errors import ValidationFailed
from conference.core.permissions import Role
from conference.events import branding
from conference.extensions import db
from tests.fixtures.accounts import csrf_token, login

BRANDING = "/manage/events/brand-conf/branding"


def png_bytes(size: tuple[int, int] = (300, 120), color: tuple[int, int, int, int] = (200, 30, 60, 128)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def organiser_client(client, create_event, person):
    event = create_event("brand-conf", title="Regionalkonferenz Mitte")
    login(client, person(event, Role.ORGANISER).email)
    return client, event


def post_large(client, field: str, data: bytes):
    """A large upload as bytes: the test client would spool a large file to an unclosed temporary file."""
    token = csrf_token(client, BRANDING)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode()
            + f"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"x.png\"\r\n".encode()
            + b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--XyZ--\r\n")
    return client.post(BRANDING, data=body, content_type="multipart/form-data; boundary=XyZ")


def post_branding(client, **fields):
    data = {"csrf_token": csrf_token(client, BRANDING), "accent_color": "", "imprint_url": "", "privacy_url": "",
            "contact_url": "", **fields}
    return client.post(BRANDING, data=data, content_type="multipart/form-data")


@pytest.mark.parametrize(("first", "second", "ratio"), [
    ("#000000", "#ffffff", 21.0), ("#ffffff", "#ffffff", 1.0), ("#595959", "#ffffff", 7.0), ("#767676", "#ffffff", 4.54),
])
def test_contrast_ratio_matches_wcag(first: str, second: str, ratio: float) -> None:
    assert round(contrast_ratio(first, second), 2) == ratio


@pytest.mark.parametrize("color", ["#777777", "#f0a500", "#3b82f6", "#ffffff"])
def test_light_accent_refused_with_contrast_in_message(app, color: str) -> None:
    with app.test_request_context(headers={"Accept-Language": "en"}), pytest.raises(ValidationFailed) as error:
        branding.check_accent_color(color)
    assert (error.value.field, error.value.code) == ("accent_color", "low_contrast")
    assert "4.5:1" in error.value.message and color in error.value.message
    assert f"only {int(contrast_ratio(color, '#ffffff') * 100) / 100:.2f}:1" in error.value.message


@pytest.mark.parametrize(("given", "kept"), [("#1D4F91", "#1d4f91"), (" #6a1b4d ", "#6a1b4d"), ("", None)])
def test_dark_accent_accepted(app, given: str, kept: str | None) -> None:
    with app.test_request_context():
        assert branding.check_accent_color(given) == kept


@pytest.mark.parametrize("color", ["red", "#12345", "#12345g", "url(x)", "#123456;}body{x:y"])
def test_malformed_accent_refused(app, color: str) -> None:
    with app.test_request_context(), pytest.raises(ValidationFailed) as error:
        branding.check_accent_color(color)
    assert error.value.field == "accent_color"


def test_branding_applied_to_event_pages(organiser_client) -> None:
    client, event = organiser_client
    response = post_branding(client, accent_color="#6a1b4d", imprint_url="https://verein.example/impressum",
                             privacy_url="https://verein.example/datenschutz", contact_url="mailto:info@verein.example",
                             logo=(io.BytesIO(png_bytes()), "logo.png"))
    assert response.status_code == 303
    assert event.accent_color == "#6a1b4d"
    css = client.get("/events/brand-conf/brand.css")
    assert (css.status_code, css.mimetype, css.get_data(as_text=True)) == (200, "text/css", ":root{--accent:#6a1b4d;}\n")
    html = client.get("/events/brand-conf/").get_data(as_text=True)
    assert 'href="/events/brand-conf/brand.css"' in html
    assert 'class="brand" href="/events/brand-conf/"' in html and "<span>Regionalkonferenz Mitte</span>" in html
    assert 'src="/events/brand-conf/logo"' in html
    assert 'href="https://verein.example/impressum"' in html and 'href="mailto:info@verein.example"' in html
    assert "style=" not in html  # the CSP forbids inline styles
    with client.get("/events/brand-conf/logo") as logo:
        assert logo.mimetype == "image/png" and "sandbox" in logo.headers["Content-Security-Policy"]
        data = logo.data
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (300, 120))  # re-encoded, transparency kept


def test_light_accent_refused_by_the_form_nothing_saved(organiser_client) -> None:
    client, event = organiser_client
    response = post_branding(client, accent_color="#f0a500", imprint_url="https://verein.example/impressum")
    assert response.status_code == 400
    assert "4.5:1" in response.get_data(as_text=True)
    db.session.refresh(event)
    assert (event.accent_color, event.imprint_url) == (None, None)
    assert client.get("/events/brand-conf/brand.css").get_data(as_text=True) == ""


@pytest.mark.parametrize(("field", "value"), [("imprint_url", "javascript:alert(1)"),
                                              ("privacy_url", "http://verein.example/datenschutz"),
                                              ("contact_url", "mailto:x\"onmouseover=alert(1)")])
def test_footer_links_must_be_https_or_mailto(organiser_client, field: str, value: str) -> None:
    client, event = organiser_client
    response = post_branding(client, **{field: value})
    assert response.status_code == 400
    db.session.refresh(event)
    assert getattr(event, field) is None


def test_logo_that_is_not_an_image_refused(organiser_client) -> None:
    client, event = organiser_client
    response = post_branding(client, logo=(io.BytesIO(b"<svg onload=alert(1)>"), "logo.png"))
    assert response.status_code == 400
    assert "PNG, JPEG, WebP or GIF" in response.get_data(as_text=True)
    db.session.refresh(event)
    assert event.logo_filename is None


def test_logo_over_its_size_refused_with_message(organiser_client) -> None:
    client, event = organiser_client
    too_big = b"\x89PNG\r\n\x1a\n" + b"\0" * branding.LOGO_MAX_BYTES
    response = post_large(client, "logo", too_big)
    assert response.status_code == 400
    assert "The logo may be at most 2 MB." in response.get_data(as_text=True)
    db.session.refresh(event)
    assert event.logo_filename is None


def test_logo_over_the_body_limit_refused_before_the_form_is_read(organiser_client) -> None:
    client, event = organiser_client
    # The body is built as bytes: the test client would spool a large one to an unclosed temporary file.
    token = csrf_token(client, BRANDING)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode()
            + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"logo.png\"\r\n"
            + b"Content-Type: image/png\r\n\r\n" + b"\0" * (branding.FORM_MAX_BYTES + 1)
            + b"\r\n--XyZ--\r\n")
    response = client.post(BRANDING, data=body, content_type="multipart/form-data; boundary=XyZ")
    assert response.status_code == 413
    db.session.refresh(event)
    assert event.logo_filename is None


def test_event_without_branding_keeps_platform_look(client, create_event) -> None:
    create_event("plain-conf", title="Schlichte Konferenz")
    html = client.get("/events/plain-conf/").get_data(as_text=True)
    assert "brand.css" not in html and "/logo" not in html
    assert "<span>Schlichte Konferenz</span>" in html
    assert client.get("/events/plain-conf/logo").status_code == 404
