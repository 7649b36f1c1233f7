"""The unsubscribe link of bulk mail: a page with one button, and the one-click POST of RFC 8058."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from conference.core import after_commit
from conference.core.mail import opt_out, read_unsubscribe_token

bp = Blueprint("mail", __name__)


@bp.route("/mail/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    """GET only asks (link scanners open links); POST, from the page or from the mail program, unsubscribes.

    The signed token is the authorisation, so the endpoint takes no login and no CSRF token: a mail program's
    one-click POST carries neither.
    """
    target = read_unsubscribe_token(token)
    if target is None:
        abort(404)
    address, event_id = target
    if request.method == "POST":
        opt_out(address, event_id)
        after_commit.commit()
    return render_template("mail/unsubscribe.html", address=address, done=request.method == "POST")
