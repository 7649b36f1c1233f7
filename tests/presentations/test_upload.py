"""Slide upload: accepted types, every kind of bad input (4xx, database and upload folder unchanged), limits,
permissions, CSRF, concurrency."""

from __future__ import annotations

import io
import threading
import time
import zipfile

import pytest
from flask import Flask

from conference.auth.logins import issue_api_token
from conference.core.after_commit import commit
from conference.extensions import db
from conference.presentations.models import Presentation
from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.presentations import (
    key_bytes,
    odp_bytes,
    office_zip_bomb,
    pdf_bytes,
    ppt_bytes,
    pptx_bytes,
    snapshot,
    upload,
    zip_bytes,
)
from tests.support.pdfs import padded_pdf


def api_token(user) -> str:
    token = issue_api_token(user, name="test")
    commit()
    return token


def slides_page(stage) -> str:
    return f"/events/{stage.event.slug}/sessions/{stage.session.id}/slides"


@pytest.mark.parametrize(("filename", "builder", "file_type"), [
    ("Vortrag Müller.pdf", pdf_bytes, "pdf"),
    ("deck.pptx", pptx_bytes, "pptx"),
    ("deck.odp", odp_bytes, "odp"),
    ("deck.key", key_bytes, "key"),
    ("deck.PPT", ppt_bytes, "ppt"),
])
def test_upload_accepted_types_create_version(app: Flask, client, slides_stage, filename, builder,
                                              file_type) -> None:
    data = builder()
    response = upload(client, slides_stage.session.id, filename, data, token=api_token(slides_stage.speaker))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    import hashlib

    assert (body["version"], body["filename"], body["size"], body["visibility"], body["file_type"]) == \
        (1, filename, len(data), "private", file_type)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    stored = db.session.get(Presentation, body["id"])
    assert stored.stored_filename != filename and stored.stored_filename.endswith(f".{file_type}")
    path = app.config["UPLOAD_DIR"] + "/presentations/" + stored.stored_filename
    with open(path, "rb") as handle:
        assert handle.read() == data


def test_upload_new_upload_is_new_version_and_list_shows_all_to_speaker(client, slides_stage) -> None:
    token = api_token(slides_stage.speaker)
    first = upload(client, slides_stage.session.id, "v1.pdf", pdf_bytes("eins"), token=token).get_json()
    second = upload(client, slides_stage.session.id, "v2.pdf", pdf_bytes("zwei"), token=token).get_json()
    assert (first["version"], second["version"]) == (1, 2)
    listed = client.get(f"/api/v1/sessions/{slides_stage.session.id}/presentations",
                        headers={"Authorization": f"Bearer {token}"}).get_json()["presentations"]
    assert [(p["version"], p["is_current"]) for p in listed] == [(2, True), (1, False)]


def html_polyglot() -> bytes:
    return b"<html><script>alert(1)</script></html>\n%PDF-1.4\n%%EOF\n"


BAD_FILES = [
    ("renamed.pdf", lambda: b"MZ\x90\x00 this is an executable, not a PDF" * 10, 422, "content_mismatch"),
    ("polyglot.pdf", html_polyglot, 422, "content_mismatch"),
    ("html-inside.pdf", lambda: b"%PDF-1.4\n<html><body><script>alert(1)</script></body></html>\n%%EOF\n", 422,
     "content_mismatch"),
    ("page.html", lambda: b"<html><script>alert(1)</script></html>", 422, "unsupported_type"),
    ("image.svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 422, "unsupported_type"),
    ("slides.pdf.html", pdf_bytes, 422, "unsupported_type"),
    ("slides.html.pdf", pdf_bytes, 422, "invalid_filename"),
    ("slides.exe.pptx", pptx_bytes, 422, "invalid_filename"),
    ("../../etc/passwd.pdf", pdf_bytes, 422, "invalid_filename"),
    ("..\\..\\windows\\evil.pdf", pdf_bytes, 422, "invalid_filename"),
    ('evil";x=".pdf', pdf_bytes, 422, "invalid_filename|unsupported_type"),
    ("evil\u202egnp.pdf", pdf_bytes, 422, "invalid_filename"),
    (".hidden.pdf", pdf_bytes, 422, "invalid_filename"),
    ("empty.pdf", lambda: b"", 422, "empty_file"),
    ("no-extension", pdf_bytes, 422, "unsupported_type"),
    ("deck.pptx", pdf_bytes, 422, "content_mismatch"),
    ("deck.pptx", lambda: zip_bytes([("ppt/presentation.xml", b"<x/>")]), 422, "content_mismatch"),
    ("deck.key", pptx_bytes, 422, "content_mismatch"),
    ("deck.odp", pptx_bytes, 422, "content_mismatch"),
    ("deck.ppt", pdf_bytes, 422, "content_mismatch"),
    ("deck.pptx", lambda: b"PK\x03\x04 truncated zip", 422, "content_mismatch"),
    ("traversal.pptx", lambda: zip_bytes([("[Content_Types].xml", b"x"), ("../../evil.sh", b"x")]), 422,
     "archive_refused"),
    ("absolute.odp", lambda: zip_bytes([("mimetype", b"application/vnd.oasis.opendocument.presentation"),
                                        ("/etc/cron.d/evil", b"x")]), 422, "archive_refused"),
    ("bomb.pptx", office_zip_bomb, 422, "archive_refused"),
]


@pytest.mark.parametrize(("filename", "builder", "status", "code"), BAD_FILES,
                         ids=[f"{name}-{code}" for name, _b, _s, code in BAD_FILES])
def test_upload_bad_file_refused_and_nothing_changes(app: Flask, client, slides_stage, filename, builder,
                                                     status, code) -> None:
    token = api_token(slides_stage.speaker)
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, filename, builder(), token=token)
    assert response.status_code == status
    body = response.get_json()
    assert body["ok"] is False
    assert body["error"] in code.split("|")
    assert body["message"]
    assert snapshot(app) == before


def test_upload_refusal_says_what_is_accepted(client, slides_stage) -> None:
    response = upload(client, slides_stage.session.id, "x.docx", b"PK\x03\x04", token=api_token(slides_stage.speaker))
    assert response.status_code == 422
    assert "PDF (.pdf), PowerPoint (.pptx, .ppt), OpenDocument (.odp) and Keynote (.key)" in \
        response.get_json()["message"]


def test_upload_header_injection_filename_refused(app: Flask, client, slides_stage) -> None:
    """A raw multipart body whose file name carries CR/LF (the test client would not encode it)."""
    before = snapshot(app)
    boundary = "XyZ"
    data = pdf_bytes()
    body_encoded = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f"filename*=UTF-8''a.pdf%0D%0ASet-Cookie%3A%20x%3D1.pdf\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    token = api_token(slides_stage.speaker)
    for raw in (body_encoded,):
        response = client.post(f"/api/v1/sessions/{slides_stage.session.id}/presentations", data=raw,
                               headers={"Authorization": f"Bearer {token}",
                                        "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 422
        assert response.get_json()["error"] in ("invalid_filename", "unsupported_type")
        assert "Set-Cookie" not in response.headers
    assert snapshot(app) == before


def exact_pdf(size: int) -> bytes:
    return padded_pdf(size)


def test_upload_exactly_at_limit_accepted_one_byte_over_refused_413(app: Flask, client, slides_stage) -> None:
    app.config["PRESENTATION_MAX_BYTES"] = 300_000
    token = api_token(slides_stage.speaker)
    assert upload(client, slides_stage.session.id, "fits.pdf", exact_pdf(300_000), token=token).status_code == 201
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, "over.pdf", exact_pdf(300_001), token=token)
    assert response.status_code == 413
    assert response.get_json()["error"] == "too_large"
    assert snapshot(app) == before


def test_upload_declared_length_over_limit_refused_before_reading(app: Flask, client, slides_stage) -> None:
    class Unreadable(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            raise AssertionError("the body must not be read")

    before = snapshot(app)
    response = client.post(
        f"/api/v1/sessions/{slides_stage.session.id}/presentations",
        headers={"Authorization": f"Bearer {api_token(slides_stage.speaker)}",
                 "Content-Type": "multipart/form-data; boundary=abc"},
        environ_overrides={"CONTENT_LENGTH": str(2 * 1024 ** 3), "wsgi.input": Unreadable()})
    assert response.status_code == 413
    assert snapshot(app) == before


def test_upload_quota_per_user(app: Flask, client, slides_stage) -> None:
    app.config["PRESENTATION_USER_QUOTA_BYTES"] = 5000
    token = api_token(slides_stage.speaker)
    assert upload(client, slides_stage.session.id, "a.pdf", exact_pdf(4000), token=token).status_code == 201
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, "b.pdf", exact_pdf(4000), token=token)
    assert response.status_code == 413
    assert snapshot(app) == before


@pytest.mark.parametrize("who", ["attendee", "other_speaker", "outsider"])
def test_upload_by_someone_not_speaking_forbidden(app: Flask, client, slides_stage, who) -> None:
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, "x.pdf", pdf_bytes(),
                      token=api_token(getattr(slides_stage, who)))
    assert response.status_code == 403
    assert snapshot(app) == before


def test_upload_anonymous_unauthenticated(app: Flask, client, slides_stage) -> None:
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, "x.pdf", pdf_bytes())
    assert response.status_code == 401
    assert snapshot(app) == before


def test_upload_organiser_may_upload_for_any_session(client, slides_stage) -> None:
    response = upload(client, slides_stage.other_session.id, "x.pdf", pdf_bytes(),
                      token=api_token(slides_stage.organiser))
    assert response.status_code == 201


def test_upload_with_cookie_and_csrf_header_accepted(client, slides_stage) -> None:
    login(client, "speaker@example.org")
    token = csrf_token(client, slides_page(slides_stage))
    response = upload(client, slides_stage.session.id, "x.pdf", pdf_bytes(), csrf=token)
    assert response.status_code == 201


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_upload_with_cookie_without_valid_csrf_refused(app: Flask, client, slides_stage, token) -> None:
    login(client, "speaker@example.org")
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, "x.pdf", pdf_bytes(), csrf=token)
    assert response.status_code == 400
    assert response.get_json()["error"] == "csrf_failed"
    assert snapshot(app) == before


def test_upload_form_without_javascript_uses_csrf_field(app: Flask, client, slides_stage) -> None:
    login(client, "speaker@example.org")
    token = csrf_token(client, slides_page(slides_stage))
    response = client.post(slides_page(slides_stage), content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (io.BytesIO(pdf_bytes()), "folien.pdf")})
    assert response.status_code == 303
    assert db.session.query(Presentation).count() == 1
    before = snapshot(app)
    missing = client.post(slides_page(slides_stage), content_type="multipart/form-data",
                          data={"file": (io.BytesIO(pdf_bytes()), "folien.pdf")})
    assert missing.status_code == 400
    assert snapshot(app) == before


def test_upload_into_break_refused(app: Flask, client, slides_stage, create_talk) -> None:
    pause = create_talk(slides_stage.event, title="Pause", kind="break")
    before = snapshot(app)
    response = upload(client, pause.id, "x.pdf", pdf_bytes(), token=api_token(slides_stage.organiser))
    assert response.status_code == 400
    assert snapshot(app) == before


def test_upload_not_multipart_or_missing_field_refused(app: Flask, client, slides_stage) -> None:
    token = api_token(slides_stage.speaker)
    before = snapshot(app)
    url = f"/api/v1/sessions/{slides_stage.session.id}/presentations"
    raw = client.post(url, data=pdf_bytes(), headers={"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/pdf"})
    wrong_field = client.post(url, headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data",
                              data={"upload": (io.BytesIO(pdf_bytes()), "x.pdf")})
    no_file = client.post(url, headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data",
                          data={"title": "x"})
    assert [r.status_code for r in (raw, wrong_field, no_file)] == [400, 400, 400]
    assert snapshot(app) == before


def test_upload_unknown_session_404(client, slides_stage) -> None:
    response = upload(client, 999_999, "x.pdf", pdf_bytes(), token=api_token(slides_stage.organiser))
    assert response.status_code == 404


def test_two_concurrent_uploads_for_one_session_get_distinct_versions(app: Flask, slides_stage) -> None:
    tokens = [api_token(slides_stage.speaker), api_token(slides_stage.organiser)]
    clients = [app.test_client(), app.test_client()]
    barrier = threading.Barrier(2)
    results: list[tuple[int, dict]] = []
    session_id = slides_stage.session.id

    def send(index: int) -> None:
        barrier.wait(timeout=10)
        response = upload(clients[index], session_id, f"parallel-{index}.pdf",
                          pdf_bytes(f"parallel {index}"), token=tokens[index])
        results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(status for status, _body in results) == [201, 201]
    assert sorted(body["version"] for _status, body in results) == [1, 2]
    files, counts = snapshot(app)
    stored = [f for f in files if f.startswith("presentations/")]
    assert len(stored) == 2 and counts["presentations"] == 2
    assert not [f for f in files if ".part" in f]


def test_upload_zip_checks_use_central_directory_only(tmp_path) -> None:
    """The bomb is refused from its declared sizes, in a few milliseconds, without inflating anything."""
    from pathlib import Path

    from conference.presentations.content_check import check_content
    from conference.presentations.upload_errors import UploadRefused

    path = Path(tmp_path) / "bomb.pptx"
    path.write_bytes(office_zip_bomb())
    started = time.perf_counter()
    with pytest.raises(UploadRefused) as refused:
        check_content(path, "pptx", path.stat().st_size)
    assert refused.value.code == "archive_refused"
    assert time.perf_counter() - started < 0.5
    with zipfile.ZipFile(path) as archive:
        assert sum(i.file_size for i in archive.infolist()) > 300 * 1024 * 1024 - 1
