"""Compression: brotli and gzip for text answers over 1 KB (pages, exports, the socket.io client), never for
PDFs, ZIPs, byte ranges or small answers; a compressed copy has its own strong ETag and answers 304."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from pathlib import Path

import brotli
import pytest

from conference.core import after_commit
from tests.fixtures.presentations import pdf_bytes
from tests.presentations.test_visibility import download_url, end_session, fetch, put_slides

SOCKET_IO = Path(__file__).resolve().parents[2] / "static" / "vendor" / "socket.io" / "socket.io.min.js"
DECODE = {"gzip": gzip.decompress, "br": brotli.decompress}
#: A page's CSRF token carries a timestamp: two requests a second apart differ there and only there.
CSRF_TOKEN = re.compile(rb'name="csrf_token" value="[^"]*"|"csrf-token" content="[^"]*"')


def without_tokens(body: bytes) -> bytes:
    return CSRF_TOKEN.sub(b"csrf", body)


@pytest.fixture
def released(agenda_world, create_agenda_session, publish):
    w = agenda_world
    for hour in range(9, 15):
        create_agenda_session(w.event, f"Vortrag um {hour}", room=w.rooms[hour % 2], start=f"{hour:02}:00",
                              end=f"{hour:02}:45", speakers=[w.speakers[0]])
    after_commit.commit()
    publish(w.event, "v1")
    return w


@pytest.mark.parametrize("coding", ["gzip", "br"])
@pytest.mark.parametrize("url", ["/events/agenda-test/agenda", "/events/agenda-test/schedule.json",
                                 "/events/agenda-test/schedule.ics", "/api/v1/events/agenda-test/sessions"])
def test_text_answers_are_compressed(client, released, url, coding) -> None:
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and len(plain.data) > 1024
    packed = client.get(url, headers={"Accept-Encoding": f"{coding}"})
    assert packed.headers["Content-Encoding"] == coding
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert without_tokens(DECODE[coding](packed.data)) == without_tokens(plain.data)
    assert len(packed.data) < len(plain.data) / 2
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + f':{coding}"'
    again = client.get(url, headers={"Accept-Encoding": coding, "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_browser_accept_encoding_prefers_brotli(client, released) -> None:
    response = client.get("/events/agenda-test/agenda", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert response.headers["Content-Encoding"] == "br"


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_socket_io_client_is_compressed(client, coding) -> None:
    with client.get("/static/vendor/socket.io/socket.io.min.js", headers={"Accept-Encoding": coding}) as response:
        body = response.get_data()
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == coding
    assert DECODE[coding](body) == SOCKET_IO.read_bytes()
    assert len(body) < SOCKET_IO.stat().st_size / 2


def test_byte_range_of_a_static_file_is_not_compressed(client) -> None:
    with client.get("/static/vendor/socket.io/socket.io.min.js",
                    headers={"Accept-Encoding": "gzip, br", "Range": "bytes=0-99"}) as response:
        body = response.get_data()
    assert response.status_code == 206
    assert "Content-Encoding" not in response.headers
    assert body == SOCKET_IO.read_bytes()[:100]


def test_small_answers_are_not_compressed(client, released) -> None:
    response = client.get("/api/v1/events/agenda-test/agenda/version", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200 and len(response.data) < 1024
    assert "Content-Encoding" not in response.headers


def test_pdf_and_zip_downloads_are_not_compressed(client, slides_stage) -> None:
    body = put_slides(client, slides_stage, filename="fertig.pdf", data=pdf_bytes("fertig"))
    end_session(slides_stage.session)
    pdf = fetch(client, download_url(body), headers={"Accept-Encoding": "gzip, br"})
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert "Content-Encoding" not in pdf.headers and pdf.data == pdf_bytes("fertig")
    archive = fetch(client, f"/events/{slides_stage.event.slug}/presentations/archive.zip",
                    headers={"Accept-Encoding": "gzip, br"})
    assert archive.status_code == 200 and "Content-Encoding" not in archive.headers
    with zipfile.ZipFile(io.BytesIO(archive.data)) as opened:
        assert len(opened.namelist()) == 1
    partial = fetch(client, f"/events/{slides_stage.event.slug}/presentations/archive.zip",
                    headers={"Accept-Encoding": "gzip, br", "Range": "bytes=0-9",
                             "If-Range": archive.headers["ETag"]})
    assert partial.status_code == 206 and partial.data == archive.data[:10]
    assert "Content-Encoding" not in partial.headers


def test_logged_in_pages_are_not_compressed_but_their_json_is(client, released, person) -> None:
    """BREACH: a logged-in page holds the CSRF token next to reflected text; the bytes would leak it."""
    from tests.fixtures.accounts import login

    login(client, person(released.event, "attendee").email)
    page = client.get("/events/agenda-test/agenda", headers={"Accept-Encoding": "gzip, br"})
    assert page.status_code == 200 and len(page.data) > 1024
    assert "Content-Encoding" not in page.headers
    data = client.get("/events/agenda-test/schedule.json", headers={"Accept-Encoding": "gzip, br"})
    assert data.headers["Content-Encoding"] == "br"
