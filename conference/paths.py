"""Where the application's files are: the copies inside an installed wheel, else the checkout's top-level folders.

A wheel carries `templates/`, `static/` and `migrations/` in `conference/_data/` (the build maps them there,
see setup.py) and the compiled translations in `conference/translations/`. A checkout installed with
`pip install -e .` has no `_data/` and uses the repository's own folders. Nothing is looked up through the
current directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(str(resources.files("conference")))
PACKAGED_DATA = PACKAGE_DIR / "_data"
CHECKOUT_ROOT = PACKAGE_DIR.parent
DATA_FOLDERS = ("templates", "static", "migrations")


def is_installed_release() -> bool:
    """True for a regular (wheel) install, False for a checkout (editable install, PYTHONPATH)."""
    return (PACKAGED_DATA / "templates").is_dir()


def data_dir(name: str) -> Path:
    """The folder `templates`, `static` or `migrations`: the packaged copy if there is one, else the checkout's."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}")
    packaged = PACKAGED_DATA / name
    return packaged if packaged.is_dir() else CHECKOUT_ROOT / name


def translations_dir() -> Path:
    return PACKAGE_DIR / "translations"


def default_instance_path() -> Path:
    """`./instance` for an installed release (site-packages is no place for data), the checkout's `instance/`."""
    return Path.cwd() / "instance" if is_installed_release() else CHECKOUT_ROOT / "instance"
