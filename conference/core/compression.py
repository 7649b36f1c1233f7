"""Compression of text answers over 1 KB with brotli or gzip (Flask-Compress), never of downloads.

Flask-Compress picks the coding from Accept-Encoding, compresses pages, JSON, exports, style sheets and the
static scripts (streamed from the file), adds `Vary: Accept-Encoding`, and gives a compressed copy its own
strong ETag (`"<etag>:br"`), so a byte range or a 304 never mixes the copies. Left alone here: anything that
is not text (PDF, ZIP, images), answers sent as a download (`Content-Disposition: attachment`), partial
answers and requests for a byte range (a range counts bytes of the uncompressed file), Engine.IO
polling, which never passes through Flask, and the HTML pages of a logged-in person: they hold the CSRF token
next to text the address reflects (`next=`), which compression would let an observer of the encrypted sizes
guess byte by byte (BREACH, RFC 7457 2.6). An anonymous page's token guards nothing of value, and a bearer
token is never sent by a browser on its own, so everything else is compressed.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_compress import Compress
from flask_login import current_user

TEXT_TYPES = (
    "text/html", "text/css", "text/plain", "text/xml", "text/calendar", "text/javascript",
    "application/javascript", "application/json", "application/xml", "application/manifest+json",
    "image/svg+xml",
)
MIN_SIZE = 1024  # below this the coding costs more than it saves (a 304, a short JSON answer)


class TextCompress(Compress):
    """Flask-Compress with the cases that must stay as they are left out before it looks at the answer."""

    def after_request(self, response: Response | None) -> Response:
        if response is not None and (
                response.status_code == 206 or "Range" in request.headers
                or response.headers.get("Content-Disposition", "").startswith("attachment")
                or (response.mimetype == "text/html" and current_user.is_authenticated)):
            return response
        source = response.response if response is not None else None
        compressed = super().after_request(response)
        close = getattr(source, "close", None)
        if compressed.response is not source and close is not None:
            # A streamed file (static scripts) is compressed chunk by chunk from a new iterable: the file
            # itself must still be closed when the answer is done.
            compressed.call_on_close(close)
        return compressed


def init_compression(app: Flask) -> None:
    """Register before the HTTP cache hook: Flask runs after_request hooks last-registered first, so the
    ETag and 304 are decided on the plain body, then the body is compressed."""
    app.config.setdefault("COMPRESS_MIMETYPES", list(TEXT_TYPES))
    app.config.setdefault("COMPRESS_MIN_SIZE", MIN_SIZE)
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br", "gzip"])
    app.config.setdefault("COMPRESS_BR_LEVEL", 5)
    TextCompress(app)
