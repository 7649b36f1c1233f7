"""The token API (`/api/v1/auth/...`, `/api/v1/me`): views of the auth blueprint (`blueprint.bp`), transport only."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from conference.auth import accounts, logins
from conference.auth.blueprint import bp, check_login_rate, revoke_own_token, token_issue
from conference.auth.models import ApiToken
from conference.core import after_commit
from conference.core.api import api_login_required, field, json_body
from conference.core.errors import RateLimited
from conference.extensions import db


@bp.route("/api/v1/auth/token", methods=["POST"])
def api_issue_token() -> Any:
    data = json_body()
    email = field(data, "email", str, max_length=254)
    password = field(data, "password", str, max_length=1024)
    name = field(data, "name", str, required=False, max_length=80) or "api"
    attempt, from_address = check_login_rate(email)
    try:
        issue = token_issue(accounts.normalise_email(email)).begin()
    except RateLimited:
        attempt.give_back()  # the password was not checked
        raise
    user = accounts.authenticate(email, password)
    if user is None:
        issue.give_back()
        from_address.hit()
        return jsonify({"ok": False, "error": "invalid_credentials",
                        "message": _("E-mail or password is not correct.")}), 401
    attempt.give_back()
    token = logins.issue_api_token(user, name=name)
    after_commit.commit()
    return jsonify({"token": token}), 201


@bp.route("/api/v1/auth/tokens", methods=["GET"])
@api_login_required
def api_list_tokens() -> Any:
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)).all()
    return jsonify({"tokens": [
        {"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
         "revoked": t.revoked_at is not None} for t in tokens
    ]})


@bp.route("/api/v1/auth/tokens/<int:token_id>", methods=["DELETE"])
@api_login_required
def api_revoke_token(token_id: int) -> Any:
    revoke_own_token(token_id)
    return "", 204


@bp.route("/api/v1/me", methods=["GET"])
@api_login_required
def api_me() -> Any:
    return jsonify({"id": current_user.id, "name": current_user.name, "email": current_user.email,
                    "roles": {m.event.slug: m.role for m in current_user.memberships}})
