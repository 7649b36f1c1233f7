"""Packaging rules that need no build: data folders, the lock files, the Makefile's stamps, the version."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conference import __version__, paths
from conference.core.permissions import Role
from tests.fixtures.accounts import login

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def locked(name: str) -> dict[str, tuple[str, int]]:
    """{package: (version, number of hashes)} of requirements/<name>."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"unexpected line in {name}: {line!r}")
    return pins


def test_data_dir_prefers_the_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.data_dir("templates") == ROOT / "templates"  # the checkout has no conference/_data
    assert not paths.is_installed_release()
    assert paths.default_instance_path() == ROOT / "instance"
    (tmp_path / "templates").mkdir()
    monkeypatch.setattr(paths, "PACKAGED_DATA", tmp_path)
    assert paths.data_dir("templates") == tmp_path / "templates"
    assert paths.data_dir("static") == ROOT / "static"  # only what the package carries
    assert paths.is_installed_release()
    assert paths.default_instance_path() == Path.cwd() / "instance"
    with pytest.raises(ValueError, match="unknown data folder"):
        paths.data_dir("../etc")


def test_every_requirement_is_locked_with_hashes_within_its_range() -> None:
    runtime, test = locked("lock.txt"), locked("lock-test.txt")
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    checks = [(r, runtime) for r in project["dependencies"] + extras["gevent"] + extras["postgres"] + extras["redis"]]
    checks += [(r, test) for r in extras["test"] if not r.startswith("conference[")]
    for line, lock in checks:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{name} is not in the lock file"
        version, hashes = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} outside {line}"
        assert hashes >= 1, f"{name} has no hash"
    # One resolution: the test lock holds the runtime lock's versions.
    assert {name: pin[0] for name, pin in runtime.items()} == {name: test[name][0] for name in runtime}


def test_ranges_are_compatible_releases() -> None:
    project = PYPROJECT["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for line in lines:
        requirement = Requirement(line)
        operators = {spec.operator for spec in requirement.specifier}
        assert operators <= {"~="}, line


def test_the_installed_stamps_depend_on_the_lock_files() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(VENV\)/\.installed: \$\(LOCK\) ", makefile, re.MULTILINE)
    assert re.search(r"^\$\(VENV\)/\.installed-test: \$\(LOCK_TEST\) ", makefile, re.MULTILINE)
    assert "LOCK := requirements/lock.txt" in makefile and "LOCK_TEST := requirements/lock-test.txt" in makefile
    assert makefile.count("--require-hashes -r") == 2
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_version_comes_from_the_package_and_has_a_changelog_entry() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "conference.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.MULTILINE)
    assert "## [Unreleased]" in changelog


@pytest.mark.parametrize(("role", "admin", "shown"), [(Role.ORGANISER, False, True), (None, True, True),
                                                      (Role.MODERATOR, False, False), (Role.ATTENDEE, False, False),
                                                      (None, False, False)])
def test_the_footer_shows_the_version_to_organisers_and_administrators(
        client: FlaskClient, create_event: Callable[..., Any], person: Callable[..., Any],
        role: Role | None, admin: bool, shown: bool) -> None:
    event = create_event()
    user = person(event, role, is_admin=admin)
    login(client, user.email)
    page = client.get(f"/events/{event.slug}/").get_data(as_text=True)
    assert (f"Version {__version__}" in page) is shown
    assert client.get("/healthz").get_json()["version"] == __version__


def test_anonymous_visitors_see_no_version_in_the_footer(client: FlaskClient, create_event: Callable[..., Any]) -> None:
    event = create_event()
    assert f"Version {__version__}" not in client.get(f"/events/{event.slug}/").get_data(as_text=True)
