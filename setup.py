"""Build hook: the wheel carries templates/, static/, migrations/ and compiled translations.

The repository keeps `templates/`, `static/` and `migrations/` at the top level; a regular build copies them
into `conference/_data/` of the wheel (found at run time by `conference.paths`) and compiles every
`conference/translations/*/LC_MESSAGES/messages.po` into `messages.mo` with Babel, so `pip install` of the wheel
serves German. An editable install (`pip install -e .`) copies nothing, uses the checkout's folders and
compiles the catalogues in place. Everything else lives in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("templates", "static", "migrations")
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".DS_Store")


def compile_catalogues(source: Path, target: Path) -> list[str]:
    """Compile each `<locale>/LC_MESSAGES/messages.po` under `source` into the same place under `target`."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(source.glob("*/LC_MESSAGES/messages.po")):
        locale = po.parent.parent.name
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        mo = target / po.relative_to(source).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with mo.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(str(mo))
    if not written:
        raise SystemExit(f"no translation catalogues under {source}")
    return written


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        translations = ROOT / "conference" / "translations"
        if getattr(self, "editable_mode", False):
            compile_catalogues(translations, translations)
            return
        package = Path(self.build_lib) / "conference"
        for name in DATA_FOLDERS:
            target = package / "_data" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT / name, target, ignore=SKIPPED)
        compile_catalogues(translations, package / "translations")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        # The copied folders count as outputs too (`pip install` records them; `bdist_wheel` packs build_lib).
        outputs = list(super().get_outputs(include_bytecode))
        package = Path(self.build_lib) / "conference"
        for name in DATA_FOLDERS:
            outputs.extend(str(p) for p in (package / "_data" / name).rglob("*") if p.is_file())
        return outputs


setup(cmdclass={"build_py": BuildWithData})
