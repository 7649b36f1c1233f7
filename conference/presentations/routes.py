"""presentations pages and API endpoints."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("presentations", __name__)
