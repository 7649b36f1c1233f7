"""Virtual conference platform: agenda, speakers, slides and a live layer for online events.

The package import stays free of Flask on purpose: `conference run` must monkey-patch
eventlet or gevent before anything imports sockets or threading (see `conference.serving.server`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

#: The release, in one place: pyproject.toml reads it (dynamic version), `conference --version`, /healthz and
#: the organisers' footer show it. Bump it together with a new section in CHANGELOG.md.
__version__ = "0.2.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application (see `conference.factory.create_app`)."""
    from conference.factory import create_app as _create_app

    return _create_app(config)
