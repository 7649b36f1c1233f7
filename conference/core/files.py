"""Large files as responses: ranges, a strong ETag and conditional GET, sent in pieces that take turns."""

from __future__ import annotations

import os
import unicodedata
from datetime import datetime
from typing import IO
from urllib.parse import quote

from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import dump_options_header
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import FileWrapper

from conference.extensions import socketio

PIECE_BYTES = 64 * 1024


class FairFile(FileWrapper):
    """A file read in pieces that hands the event loop on after each piece.

    On a client that reads fast a socket write never blocks, so the green thread of one download would keep
    the loop until its whole file is sent (seconds for hundreds of megabytes) and every other connection, even
    /healthz, would wait.
    """

    def __next__(self) -> bytes:
        piece = super().__next__()
        socketio.sleep(0)
        return piece


def attachment_disposition(filename: str) -> str:
    """The `Content-Disposition` of a download named `filename`, built as werkzeug's `send_file` builds it (an
    ASCII `filename`, plus RFC 5987 `filename*` in UTF-8 when the name is not ASCII), for bodies that
    `send_file` cannot take (streamed generators). Control characters become `_`: werkzeug would refuse them
    with an error, and they must never end the header."""
    name = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in filename)
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        names = {"filename": simple, "filename*": f"UTF-8''{quote(name, safe='!#$&+-.^_`|~')}"}
    else:
        names = {"filename": name}
    return dump_options_header("attachment", names)


def file_response(file: IO[bytes], request: Request, *, mimetype: str, etag: str,
                  modified: datetime | None = None) -> Response:
    """`file` (opened, at its start) as the answer to `request`: 200, 206 for a range, 304 when the ETag
    matches, 416 for a range beyond the end. The response closes `file` when it is done."""
    size = os.fstat(file.fileno()).st_size
    response = Response(FairFile(file, PIECE_BYTES), mimetype=mimetype, direct_passthrough=True)
    response.content_length = size
    response.last_modified = modified
    response.set_etag(etag)
    try:
        return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        file.close()
        raise
