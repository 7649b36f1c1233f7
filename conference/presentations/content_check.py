"""Is an uploaded slide file what its extension says? PDFs by their header and trailer (and no HTML), PowerPoint
97 by its OLE2 signature, Office and Keynote archives from their central directory (entry count, paths,
compression ratio, total size) before one small metadata member is read."""

from __future__ import annotations

import zipfile
from pathlib import Path

from flask_babel import gettext as _

from conference.presentations.upload_errors import FileRefused, UploadRefused, accepted_text, megabytes

HTML_MARKERS = (b"<html", b"<script", b"<!doctype", b"<body", b"<head", b"<iframe", b"<svg", b"<?xml-stylesheet")

ZIP_MAX_ENTRIES = 10_000
ZIP_MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # uncompressed, all members together
ZIP_MAX_RATIO = 200  # per member larger than 1 MB uncompressed
ZIP_MAX_METADATA_BYTES = 1024 * 1024  # [Content_Types].xml, mimetype
OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
PPTX_CONTENT_TYPES = (
    b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    b"application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml",
)
ODP_MIMETYPE = b"application/vnd.oasis.opendocument.presentation"


def check_content(path: Path, file_type: str, size: int) -> None:
    """The content must really be what the extension says; `UploadRefused` otherwise."""
    if size == 0:
        raise FileRefused(_("The file is empty."), field="file", code="empty_file")
    with path.open("rb") as handle:
        head = handle.read(1024)
        handle.seek(max(0, size - 1024))
        tail = handle.read(1024)
    mismatch = FileRefused(
        _("The content of the file does not match its extension .%(ext)s. %(accepted)s", ext=file_type,
          accepted=accepted_text()), field="file", code="content_mismatch")
    if file_type == "pdf":
        if not head.startswith(b"%PDF-") or b"%%EOF" not in tail:
            raise mismatch
        if any(marker in head.lower() for marker in HTML_MARKERS):
            raise FileRefused(_("The PDF file contains HTML; it is not accepted."), field="file",
                                code="content_mismatch")
        return
    if file_type == "ppt":
        if not head.startswith(OLE2_MAGIC):
            raise mismatch
        return
    if not head.startswith(b"PK\x03\x04"):
        raise mismatch
    try:
        with zipfile.ZipFile(path) as archive:
            members = check_archive(archive)
            _check_office_kind(archive, members, file_type, mismatch)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError):
        raise mismatch from None


def check_archive(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Entry count, total uncompressed size, compression ratio and paths, from the central directory only."""
    members = archive.infolist()
    if len(members) > ZIP_MAX_ENTRIES:
        raise FileRefused(_("The archive has too many entries."), field="file", code="archive_refused")
    total = 0
    for info in members:
        total += info.file_size
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":") or "\x00" in name:
            raise FileRefused(_("The archive contains a file with an unsafe path."), field="file",
                                code="archive_refused")
        if info.file_size > 1024 * 1024 and info.file_size > ZIP_MAX_RATIO * max(info.compress_size, 1):
            raise FileRefused(_("The archive is compressed suspiciously strongly (zip bomb)."), field="file",
                                code="archive_refused")
    if total > ZIP_MAX_TOTAL_BYTES:
        raise FileRefused(_("The archive would unpack to more than %(mb)s MB.",
                              mb=megabytes(ZIP_MAX_TOTAL_BYTES)), field="file", code="archive_refused")
    return members


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > ZIP_MAX_METADATA_BYTES:
        raise FileRefused(_("The archive is not a valid presentation."), field="file", code="content_mismatch")
    with archive.open(info) as member:
        return member.read(ZIP_MAX_METADATA_BYTES + 1)[:ZIP_MAX_METADATA_BYTES]


def _check_office_kind(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], file_type: str,
                       mismatch: UploadRefused) -> None:
    by_name = {info.filename: info for info in members}
    if file_type == "pptx":
        info = by_name.get("[Content_Types].xml")
        if info is None or not any(kind in _read_small(archive, info) for kind in PPTX_CONTENT_TYPES):
            raise mismatch
    elif file_type == "odp":
        if not members or members[0].filename != "mimetype" or \
                _read_small(archive, members[0]).strip() != ODP_MIMETYPE:
            raise mismatch
    elif file_type == "key":
        if not any(info.filename.startswith("Index/") for info in members):
            raise mismatch
    else:
        raise mismatch
