"""Active content out of an uploaded PDF, in a sandboxed child: `python -m conference.presentations.pdfclean SRC DST`.

Removed with pikepdf (qpdf): JavaScript (document-level `/Names /JavaScript`, `/JS` anywhere, XFA forms),
actions of the kinds JavaScript, Launch, SubmitForm, ImportData (as `/OpenAction`, `/A`, additional actions
`/AA`, `/Next` chains) and embedded files (`/Names /EmbeddedFiles`, `/FileAttachment` annotations, `/EF` in file
specifications). Prints one JSON line: `{"removed": [...kinds...]}` with `sha256` and `size` of DST when
something was removed (DST is written only then: a clean PDF stays byte for byte as uploaded), or
`{"refused": "unreadable" | "encrypted"}` when the file cannot be opened. Runs under the limits of
`conference.core.sandbox`, since it parses untrusted input.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

ACTION_KINDS = {"/JavaScript": "javascript", "/Launch": "launch", "/SubmitForm": "submit_form",
                "/ImportData": "import_data"}
KINDS = ("javascript", "launch", "submit_form", "import_data", "embedded_files")
MAX_DEPTH = 200  # deeper direct nesting is not walked further (indirect objects are visited on their own)


def action_kinds(value: Any, *, depth: int = 0) -> set[str]:
    """The forbidden kinds in an action dictionary and its `/Next` chain."""
    import pikepdf

    found: set[str] = set()
    if depth > 50 or not isinstance(value, pikepdf.Dictionary):
        return found
    kind = value.get("/S")
    if isinstance(kind, pikepdf.Name) and str(kind) in ACTION_KINDS:
        found.add(ACTION_KINDS[str(kind)])
    if "/JS" in value:
        found.add("javascript")
    chained = value.get("/Next")
    for item in (chained if isinstance(chained, pikepdf.Array) else [chained] if chained is not None else []):
        found |= action_kinds(item, depth=depth + 1)
    return found


def clean(pdf: Any) -> set[str]:
    """Remove active content from the open document in place; returns the kinds removed."""
    import pikepdf

    removed: set[str] = set()
    root = pdf.Root
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        for key, kind in (("/JavaScript", "javascript"), ("/EmbeddedFiles", "embedded_files")):
            if key in names:
                del names[key]
                removed.add(kind)
    acroform = root.get("/AcroForm")
    if isinstance(acroform, pikepdf.Dictionary) and "/XFA" in acroform:
        del acroform["/XFA"]  # XFA forms carry their own scripts
        removed.add("javascript")
    for page in pdf.pages:
        annots = page.obj.get("/Annots")
        if isinstance(annots, pikepdf.Array):
            kept = [a for a in annots if not (isinstance(a, pikepdf.Dictionary)
                                              and a.get("/Subtype") == pikepdf.Name.FileAttachment)]
            if len(kept) != len(annots):
                page.obj["/Annots"] = pikepdf.Array(kept)
                removed.add("embedded_files")
    for obj in pdf.objects:
        removed |= _clean_tree(obj)
    return removed


def _clean_tree(top: Any) -> set[str]:
    """Walk one object and its direct (not indirect) children, removing what is forbidden."""
    import pikepdf

    removed: set[str] = set()
    stack = [(top, 0)]
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        if isinstance(obj, pikepdf.Dictionary):
            for key in ("/OpenAction", "/A"):
                kinds = action_kinds(obj.get(key)) if key in obj else set()
                if kinds:
                    del obj[key]
                    removed |= kinds
            extra = obj.get("/AA")
            if isinstance(extra, pikepdf.Dictionary):
                for trigger in list(extra.keys()):
                    kinds = action_kinds(extra.get(trigger))
                    if kinds:
                        del extra[trigger]
                        removed |= kinds
                if not len(extra.keys()):
                    del obj["/AA"]
            if "/JS" in obj:
                del obj["/JS"]
                removed.add("javascript")
            kind = obj.get("/S")
            if isinstance(kind, pikepdf.Name) and str(kind) in ACTION_KINDS:
                # An action kept elsewhere (e.g. in a name tree): made inert, a named action that does nothing.
                for key in ("/F", "/Win", "/Mac", "/Unix", "/Fields", "/Next"):
                    if key in obj:
                        del obj[key]
                obj["/S"] = pikepdf.Name.Named
                obj["/N"] = pikepdf.Name("/NoOp")
                removed.add(ACTION_KINDS[str(kind)])
            if "/EF" in obj:
                del obj["/EF"]
                removed.add("embedded_files")
            children = [value for _key, value in obj.items()]
        elif isinstance(obj, pikepdf.Array):
            children = list(obj)
        else:
            continue
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (pikepdf.Dictionary, pikepdf.Array)) and not child.is_indirect)
    return removed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m conference.presentations.pdfclean SOURCE.pdf TARGET.pdf", file=sys.stderr)
        return 2
    import pikepdf

    source, target = argv
    try:
        pdf = pikepdf.open(source)
    except pikepdf.PasswordError:
        print(json.dumps({"refused": "encrypted"}))
        return 0
    except (pikepdf.PdfError, ValueError, OSError) as error:
        print(f"unreadable: {error}", file=sys.stderr)
        print(json.dumps({"refused": "unreadable"}))
        return 0
    with pdf:
        removed = clean(pdf)
        if not removed:
            print(json.dumps({"removed": []}))
            return 0
        pdf.save(target)
    digest = hashlib.sha256()
    size = 0
    with open(target, "rb") as handle:
        while piece := handle.read(1024 * 1024):
            digest.update(piece)
            size += len(piece)
    print(json.dumps({"removed": [kind for kind in KINDS if kind in removed], "sha256": digest.hexdigest(),
                      "size": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
