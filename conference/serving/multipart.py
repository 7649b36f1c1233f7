"""The upload receiver's fast path past werkzeug's multipart decoder (`presentations.receiver.MultipartReceiver`).

Seam (private names): inside a file part, with no delimiter in sight, a chunk goes straight to the file and
the decoder's `buffer` (a bytearray) is set to the chunk's last bytes; `state` and `State.DATA` tell that the
decoder is inside a part. Off (every chunk through `MultipartDecoder.receive_data`, the public path) when
werkzeug is outside the tested range or a decoder lacks these names. Checked once per process.
"""

from __future__ import annotations

import functools

from conference.serving import fence

SEAM = "multipart fast path (werkzeug)"


@functools.cache
def multipart_fast_path() -> bool:
    from werkzeug.sansio import multipart

    probe = multipart.MultipartDecoder(b"probe")
    names = ((multipart, "State"), (multipart.State, "DATA"), (probe, "state"), (probe, "buffer"))
    if not fence.allows(SEAM, ("werkzeug",), names, fallback="uploads go through the decoder's public path"):
        return False
    if not isinstance(probe.buffer, bytearray):
        fence.off(SEAM, "MultipartDecoder.buffer is no bytearray", fallback="uploads go through the decoder's "
                  "public path")
        return False
    return True
