"""The domains depend one way (core <- auth <- events <- speakers <- agenda <- presentations, live): no module
imports a later domain when it is imported. Reactions against the order go through `conference.core.signals`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "conference"
ORDER = {"core": 0, "auth": 1, "events": 2, "speakers": 3, "agenda": 4, "presentations": 5, "live": 5}


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported (not function bodies, not `if TYPE_CHECKING:`)."""
    for node in body:
        if isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                yield from _import_time_statements(node.body)
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _import_time_statements(part)
        elif isinstance(node, ast.ClassDef):
            yield from _import_time_statements(node.body)
        else:
            yield node


def _imported_domains(path: Path) -> Iterator[tuple[int, str]]:
    for node in _import_time_statements(ast.parse(path.read_text(), str(path)).body):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "conference" and len(parts) > 1 and parts[1] in ORDER:
                yield node.lineno, parts[1]


def reversed_imports(package: Path = PACKAGE) -> list[str]:
    found = []
    for domain, rank in ORDER.items():
        for path in sorted((package / domain).rglob("*.py")):
            for line, imported in _imported_domains(path):
                if ORDER[imported] > rank:
                    found.append(f"{path.relative_to(package.parent)}:{line} imports conference.{imported}")
    return found


def test_domains_import_only_earlier_domains() -> None:
    assert reversed_imports() == []


def test_reversed_import_is_found(tmp_path: Path) -> None:
    (tmp_path / "speakers").mkdir()
    (tmp_path / "speakers" / "routes.py").write_text(
        "from typing import TYPE_CHECKING\nfrom conference.events.models import Event\n"
        "if TYPE_CHECKING:\n    from conference.agenda.models import ConferenceSession\n"
        "def later():\n    from conference.agenda.public import released_sessions\n"
        "from conference.agenda.models import SessionSpeaker\n")
    assert reversed_imports(tmp_path) == [f"{tmp_path.name}/speakers/routes.py:7 imports conference.agenda"]


@pytest.mark.parametrize("domain", sorted(ORDER))
def test_every_ranked_domain_exists(domain: str) -> None:
    assert (PACKAGE / domain / "__init__.py").is_file()
