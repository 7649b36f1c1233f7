"""Translation workflow: extract messages, merge them into the German catalogue, compile.

    python scripts/i18n.py update     # extract + update conference/translations/de/LC_MESSAGES/messages.po
    python scripts/i18n.py missing    # list German msgids without translation
    python scripts/i18n.py compile    # .po -> .mo (run by `make`)
    python scripts/i18n.py apply FILE # fill translations from a JSON object {msgid: msgstr}
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "conference" / "translations"
POT = TRANSLATIONS / "messages.pot"
LOCALES = ("de", "en")


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True, cwd=ROOT)


def update() -> None:
    pybabel("extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "-o", str(POT), "--no-location",
            "--sort-output", "--omit-header", ".")
    for locale in LOCALES:
        if po_path(locale).exists():
            # Keep the catalogue's header: without it the catalogue reads back as fuzzy and `compile` skips it.
            pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", locale, "--no-fuzzy-matching",
                    "--ignore-obsolete")
        else:
            pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", locale)


def missing() -> list[str]:
    with po_path("de").open("rb") as handle:
        catalog = read_po(handle, locale="de")
    return [m.id for m in catalog if m.id and not m.string]  # type: ignore[misc]


def apply(path: Path) -> None:
    translations = json.loads(path.read_text(encoding="utf-8"))
    with po_path("de").open("rb") as handle:
        catalog = read_po(handle, locale="de")
    for message in catalog:
        if message.id and message.id in translations:
            message.string = translations[message.id]
    with po_path("de").open("wb") as handle:
        write_po(handle, catalog, omit_header=False, width=120)


def compile_all(*, quiet: bool = False) -> None:
    """`--quiet` (make run, make test): only errors; otherwise with statistics per language."""
    pybabel("-q", "compile", "-d", str(TRANSLATIONS)) if quiet else \
        pybabel("compile", "-d", str(TRANSLATIONS), "--statistics")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "update"
    if command == "update":
        update()
    elif command == "missing":
        print("\n".join(missing()))
    elif command == "apply":
        apply(Path(sys.argv[2]))
    elif command == "compile":
        compile_all(quiet="--quiet" in sys.argv[2:])
    else:
        sys.exit(__doc__)
