"""PDFs of any size that every reader opens: a header, comment lines as filler, then one blank page; and the
text of a PDF the platform made (certificates), read with pdfium.

Uploads are opened with pikepdf (active content is removed), so test and benchmark files must be real PDFs;
streamed in pieces, so that a 500 MB upload needs no 500 MB in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

CHUNK = 1024 * 1024
OBJECTS = (b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
           b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 150] /Resources << >> >>")


def _tail(base: int) -> bytes:
    out = bytearray()
    offsets = []
    for number, body in enumerate(OBJECTS, start=1):
        offsets.append(base + len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = base + len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(OBJECTS) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%010d\n%%%%EOF\n" % (len(OBJECTS) + 1, xref)
    return bytes(out)


def padded_pdf_stream(size: int, label: str = "filler") -> Iterator[bytes]:
    """Exactly `size` bytes (at least ~500) of a valid one-page PDF; `label` makes files differ."""
    head = f"%PDF-1.4\n%{label}\n".encode()
    tail_length = len(_tail(0))
    filler = size - len(head) - tail_length
    if filler < 1:
        raise ValueError(f"a PDF needs at least {len(head) + tail_length + 1} bytes")
    yield head
    line = (f"%{label} ".encode() * 32)[:127] + b"\n"
    block = line * (CHUNK // len(line))
    remaining = filler - 1
    while remaining > 0:
        piece = block[:remaining]
        remaining -= len(piece)
        yield piece
    yield b"\n"  # the filler ends with a line break whatever its length
    yield _tail(size - tail_length)


def padded_pdf(size: int, label: str = "filler") -> bytes:
    return b"".join(padded_pdf_stream(size, label))


def pdf_text(data: bytes) -> str:
    """Every page's text, pages joined by a newline."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    finally:
        document.close()
