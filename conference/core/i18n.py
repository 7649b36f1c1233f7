"""Language choice: German first, English second; the switch is a POST form (no state change over GET)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, has_request_context, redirect, request, session, url_for
from flask_login import current_user

from conference.core.security import is_safe_redirect

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return "en"  # command-line output (and work outside requests) speaks English
    chosen = session.get("locale")
    if chosen in languages:
        return str(chosen)
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return str(current_user.locale)
    best = request.accept_languages.best_match(languages)
    return best or current_app.config["BABEL_DEFAULT_LOCALE"]


@bp.route("/language", methods=["POST"])
def set_language() -> Any:
    locale = request.form.get("locale", "")
    if locale in current_app.config["LANGUAGES"]:
        session["locale"] = locale
    target = request.form.get("next")
    return redirect(target if target and is_safe_redirect(target) else url_for("events.home"), code=303)
