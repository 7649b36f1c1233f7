"""The download header built by hand for streamed bodies: the same as send_file's, and unbreakable."""

from __future__ import annotations

import io

import pytest
from flask import Flask, send_file
from werkzeug.http import parse_options_header

from conference.core.files import attachment_disposition


@pytest.mark.parametrize("name", ["people-event-attendees.csv", "Präsentation – Übersicht.pdf",
                                  'Q&A "live" 2026.csv', "naïve; x=1.csv", "日本語.zip"])
def test_attachment_disposition_matches_send_file(name: str) -> None:
    with Flask(__name__).test_request_context():
        expected = send_file(io.BytesIO(b"x"), mimetype="text/csv", as_attachment=True, download_name=name)
    assert attachment_disposition(name) == expected.headers["Content-Disposition"]
    assert parse_options_header(attachment_disposition(name)) == ("attachment", {"filename": name})


def test_attachment_disposition_non_ascii_name_has_ascii_fallback() -> None:
    assert attachment_disposition('Präsentation "Ü".csv') == (
        "attachment; filename=\"Prasentation \\\"U\\\".csv\"; "
        "filename*=UTF-8''Pr%C3%A4sentation%20%22%C3%9C%22.csv")


@pytest.mark.parametrize("name", ['a";\r\nSet-Cookie: x=1.csv', 'ü";\nx.csv', "tab\there\x00.csv"])
def test_attachment_disposition_cannot_break_out(name: str) -> None:
    value = attachment_disposition(name)
    assert not any(ch in value for ch in "\r\n\t\x00")
    kind, options = parse_options_header(value)
    assert kind == "attachment"
    assert set(options) == {"filename"}
    assert options["filename"] == "".join("_" if ch in "\r\n\t\x00" else ch for ch in name)
