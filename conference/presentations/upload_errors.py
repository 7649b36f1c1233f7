"""What refuses an uploaded slide file: the errors and the messages shared by the receiver and the checks."""

from __future__ import annotations

from flask_babel import gettext as _

from conference.core.errors import DomainError, ValidationFailed


class UploadRefused(ValidationFailed):
    code = "invalid_file"


class FileRefused(UploadRefused):
    """A well-formed upload whose file is not accepted (name, type, content): 422, while a malformed multipart
    body stays 400 (the API's schema can describe the one, not the other)."""

    status = 422


class UploadTooLarge(DomainError):
    code = "too_large"
    status = 413


def accepted_text() -> str:
    return _("Accepted are PDF (.pdf), PowerPoint (.pptx, .ppt), OpenDocument (.odp) and Keynote (.key) files.")


def megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):g}"
