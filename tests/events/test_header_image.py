"""The event's header image: re-encoded (WebP, at most 1600x533, cropped to 3:1), refused with a message when it is
not an image or too large, only for the event's organisers (CSRF too), served with an ETag, shown as a banner on
the public pages, removable."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from conference.core.permissions import Role
from conference.events import branding
from conference.events.images import HEADER_IMAGE_QUALITIES
from conference.extensions import db
from tests.fixtures.accounts import csrf_token, login

BRANDING = "/manage/events/head-conf/branding"
IMAGE = "/events/head-conf/header-image"


def photo_bytes(size: tuple[int, int] = (2400, 1600), fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """A photo-like picture: a gradient with a bright band in the middle (to see what the crop keeps)."""
    image = Image.linear_gradient("L").resize(size).convert(mode)
    band = Image.new(mode, (size[0], size[1] // 10), (250, 250, 250, 255) if mode == "RGBA" else (250, 250, 250))
    image.paste(band, (0, size[1] // 2 - size[1] // 20))
    if mode == "RGBA":
        image.putalpha(Image.new("L", size, 128))
    out = io.BytesIO()
    image.save(out, format=fmt, **({"exif": b"Exif\x00\x00secret-camera"} if fmt == "JPEG" else {}))
    return out.getvalue()


@pytest.fixture
def organiser_client(client, create_event, person):
    event = create_event("head-conf", title="Kopfbild-Konferenz")
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


def stored_files(app) -> list[str]:
    with app.app_context():
        folder = branding.header_images_dir()
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_header_image_reencoded_served_with_etag_and_shown_on_public_pages(app, organiser_client) -> None:
    client, event = organiser_client
    response = post_branding(client, header_image=(io.BytesIO(photo_bytes()), "kopf.jpg"))
    assert response.status_code == 303
    db.session.refresh(event)
    assert event.header_image_filename and event.header_image_filename.endswith(".webp")
    assert stored_files(app) == [event.header_image_filename]

    with client.get(IMAGE) as served:
        assert (served.status_code, served.mimetype) == (200, "image/webp")
        assert served.headers["Content-Security-Policy"].startswith("default-src 'none'; sandbox")
        etag = served.headers["ETag"]
        data = served.data
    assert len(data) < 120_000  # a banner costs tens of kilobytes
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("WEBP", "RGB", (1600, 533))  # 3:2 cropped to 3:1
        assert "exif" not in image.info
        assert image.getpixel((800, 266))[0] > 240  # the middle band is kept
    with client.get(IMAGE, headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304

    for page in ("/events/head-conf/", "/events/head-conf/agenda", "/events/head-conf/speakers"):
        html = client.get(page).get_data(as_text=True)
        assert f'<div class="event-banner"><img src="{IMAGE}" alt=""' in html, page
        assert "style=" not in html
    manage = client.get("/manage/events/head-conf/").get_data(as_text=True)
    assert "event-banner" not in manage  # organiser pages keep their room for work


def test_transparent_header_image_keeps_its_alpha(organiser_client) -> None:
    client, event = organiser_client
    assert post_branding(client, header_image=(io.BytesIO(photo_bytes((900, 200), "PNG", "RGBA")),
                                               "kopf.png")).status_code == 303
    with client.get(IMAGE) as served:
        data = served.data
    with Image.open(io.BytesIO(data)) as image:
        assert (image.mode, image.size) == ("RGBA", (900, 200))  # already wider than 3:1: not cropped


def test_header_image_that_is_not_an_image_refused_with_message(app, organiser_client) -> None:
    client, event = organiser_client
    response = post_branding(client, accent_color="#6a1b4d",
                             header_image=(io.BytesIO(b"<svg onload=alert(1)>"), "kopf.png"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="header_image-error">The header image must be a PNG, JPEG, WebP or GIF image.<' in html
    db.session.refresh(event)
    assert (event.header_image_filename, event.accent_color) == (None, None)  # nothing half-saved
    assert stored_files(app) == []


def test_header_image_over_its_size_refused_with_message(app, organiser_client) -> None:
    client, event = organiser_client
    too_big = b"\x89PNG\r\n\x1a\n" + b"\0" * branding.HEADER_IMAGE_MAX_BYTES
    response = post_large(client, "header_image", too_big)
    assert response.status_code == 400
    assert "The header image may be at most 5 MB." in response.get_data(as_text=True)
    db.session.refresh(event)
    assert event.header_image_filename is None
    assert stored_files(app) == []


def test_branding_body_over_the_form_limit_refused_before_it_is_read(organiser_client) -> None:
    client, event = organiser_client
    token = csrf_token(client, BRANDING)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode()
            + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"header_image\"; filename=\"kopf.jpg\"\r\n"
            + b"Content-Type: image/jpeg\r\n\r\n" + b"\0" * (branding.FORM_MAX_BYTES + 1)
            + b"\r\n--XyZ--\r\n")
    response = client.post(BRANDING, data=body, content_type="multipart/form-data; boundary=XyZ")
    assert response.status_code == 413
    db.session.refresh(event)
    assert event.header_image_filename is None


def test_header_image_removed_and_its_file_deleted(app, organiser_client) -> None:
    client, event = organiser_client
    assert post_branding(client, header_image=(io.BytesIO(photo_bytes()), "kopf.jpg")).status_code == 303
    first = stored_files(app)
    assert post_branding(client, header_image=(io.BytesIO(photo_bytes((1800, 400))), "neu.jpg")).status_code == 303
    db.session.refresh(event)
    assert stored_files(app) == [event.header_image_filename] != first  # the replaced file is gone
    assert 'name="remove_header_image"' in client.get(BRANDING).get_data(as_text=True)
    assert post_branding(client, remove_header_image="y").status_code == 303
    db.session.refresh(event)
    assert event.header_image_filename is None
    assert stored_files(app) == []
    assert client.get(IMAGE).status_code == 404
    assert "event-banner" not in client.get("/events/head-conf/").get_data(as_text=True)


@pytest.mark.parametrize("role", [None, Role.ATTENDEE, Role.SPEAKER, Role.MODERATOR])
def test_only_organisers_set_a_header_image(client, create_event, person, role) -> None:
    event = create_event("head-conf")
    login(client, person(event, role).email)
    token = csrf_token(client, "/events/head-conf/")
    response = client.post(BRANDING, data={"csrf_token": token, "header_image": (io.BytesIO(photo_bytes()), "k.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 403
    db.session.refresh(event)
    assert event.header_image_filename is None


def test_anonymous_visitor_sent_to_login_and_nothing_saved(client, create_event) -> None:
    event = create_event("head-conf")
    response = client.post(BRANDING, data={"header_image": (io.BytesIO(photo_bytes()), "k.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
    db.session.refresh(event)
    assert event.header_image_filename is None


def test_header_image_form_without_csrf_token_refused(app, organiser_client) -> None:
    client, event = organiser_client
    response = client.post(BRANDING, data={"header_image": (io.BytesIO(photo_bytes()), "kopf.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    db.session.refresh(event)
    assert event.header_image_filename is None
    assert stored_files(app) == []


def test_header_image_of_an_unpublished_event_not_shown_to_visitors(app, client, create_event, person) -> None:
    event = create_event("head-conf", published=False)
    organiser = app.test_client()
    login(organiser, person(event, Role.ORGANISER).email)
    assert post_branding(organiser, header_image=(io.BytesIO(photo_bytes()), "kopf.jpg")).status_code == 303
    with organiser.get(IMAGE) as served:
        assert served.status_code == 200
    assert client.get(IMAGE).status_code == 404  # a draft event leaks nothing, not even its picture


def test_busy_header_image_stored_at_a_lower_quality_to_fit_the_page_budget(app, monkeypatch) -> None:
    from PIL import ImageFilter

    busy = Image.effect_noise((1600, 533), 60).filter(ImageFilter.GaussianBlur(1)).convert("RGB")
    at_first_quality = io.BytesIO()
    busy.save(at_first_quality, format="WEBP", quality=HEADER_IMAGE_QUALITIES[0], method=4)
    source = io.BytesIO()
    busy.save(source, format="PNG")
    monkeypatch.setattr(branding, "HEADER_IMAGE_TARGET_BYTES", len(at_first_quality.getvalue()) - 1)
    source.seek(0)
    stored = branding.process_header_image(source)
    assert len(stored) < len(at_first_quality.getvalue())
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size) == ("WEBP", (1600, 533))
