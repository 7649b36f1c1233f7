"""Making an app per test cheaply: what every app of one test process would compile again is compiled once.

The suite makes a fresh app for nearly every test (own config, own database). Two parts of that are the same
work each time and took most of it (`python -m cProfile -m pytest tests/events/test_routes.py`):

- Jinja compiles each template the app renders (~0.2 s a test that renders pages). Jinja's public bytecode
  cache, shared by every app of the process, compiles each template once per run (keyed by template file and
  source checksum, so an edited template is compiled again).
- Werkzeug compiles two small URL-builder functions per rule when a rule is added (~60 ms an app for our 156
  rules). The builder depends only on the rule, its parsed parts, its defaults and whether unknown arguments
  are appended, so the same rule in the next app can take the function already compiled. That is a private name
  (`Rule._compile_builder`): it is shared only for the werkzeug versions tested here and only when the name
  is there; otherwise every app compiles its own, as without this module, with one warning.

Production is untouched: one app per process compiles each of these once anyway.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import Any

from flask import Flask
from jinja2 import MemcachedBytecodeCache

WERKZEUG_TESTED = ("3.1.",)


class _ProcessMemory:
    """The minimal memcache client Jinja's `MemcachedBytecodeCache` asks for, in this process's memory."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._values.get(key)

    def set(self, key: str, value: bytes, timeout: int | None = None) -> None:
        self._values[key] = value


def share_template_bytecode() -> None:
    Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": MemcachedBytecodeCache(_ProcessMemory())}


def share_url_builders() -> bool:
    """Share werkzeug's compiled URL builders between apps; False (and a warning) where that is not safe."""
    from werkzeug.routing.rules import Rule

    version = importlib.metadata.version("werkzeug")
    original = getattr(Rule, "_compile_builder", None)
    if not version.startswith(WERKZEUG_TESTED) or original is None or getattr(original, "shared", False):
        if not getattr(original, "shared", False):
            warnings.warn(f"werkzeug {version}: URL builders not shared between test apps (tests run slower)",
                          stacklevel=1)
        return False
    compiled: dict[tuple[Any, ...], Any] = {}

    def compile_builder(self: Rule, append_unknown: bool = True) -> Any:
        trace = tuple(self._trace)
        defaults = tuple(sorted((name, repr(value)) for name, value in (self.defaults or {}).items()))
        key = (self.rule, append_unknown, trace, defaults)
        function = compiled.get(key)
        if function is None:
            function = compiled[key] = original(self, append_unknown)
        return function

    compile_builder.shared = True  # type: ignore[attr-defined]
    Rule._compile_builder = compile_builder  # type: ignore[method-assign]
    return True
