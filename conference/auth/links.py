"""Mailed account links: signed, expiring, bound to the account's state so that each works once; and the limit
on how many account mails one address gets."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from conference.auth.models import User
from conference.core.errors import DomainError, NotFound, RateLimited
from conference.core.ratelimit import Counter
from conference.extensions import db
from conference.settings import get_settings

ADDRESS_LINK_SALT = "account-address-link"
PASSWORD_RESET_SALT = "account-password-reset"
ADDRESS_CHANGE_SALT = "account-address-change"


class LinkInvalid(NotFound):
    code = "invalid_link"


class LinkExpired(DomainError):
    code = "link_expired"
    status = 410


def over_mail_limit(email: str) -> bool:
    """Count one account mail to `email`; True when it is one too many (confirmation links and notices share it)."""
    counter = Counter("MAIL_REQUEST_LIMIT_ACCOUNT", email)
    return counter.hit() > counter.limit.allowed


def refuse_over_mail_limit(email: str) -> None:
    """`over_mail_limit`, said to the asker: for requests by the account's owner, who may know it."""
    if over_mail_limit(email):
        raise RateLimited(_("The link has been sent several times within the last hour. Please wait a while "
                            "and look for it in your mailbox (also in the spam folder)."))


def link_hours() -> int:
    return get_settings().address_link_max_age // 3600


def _link_serializer(salt: str = ADDRESS_LINK_SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _link_state(user: User, *, extra: str = "") -> str:
    """Changes when a link has done its work (address confirmed, new password) or the password changed, so a
    link works once; keyed with the secret so the token shows nothing about the password hash. `extra` binds a
    kind of link to more state (a reset link to the newest reset request)."""
    confirmed = int(user.email_verified_at.timestamp()) if user.email_verified_at else 0
    # Without `extra` the state is the one links carried before kinds could add to it (links in flight stay good).
    message = (f"{user.password_hash}|{confirmed}" + (f"|{extra}" if extra else "")).encode()
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), message, hashlib.sha256).hexdigest()[:32]


def signed_token(user: User, *, salt: str, extra: str = "", **data: str) -> str:
    return _link_serializer(salt).dumps({"u": user.id, "e": user.email, "s": _link_state(user, extra=extra), **data})


def load_link(token: str, *, salt: str, max_age: int, extra: Callable[[User], str] = lambda _user: "",
              fields: tuple[str, ...] = ()) -> tuple[User, dict[str, str]]:
    """The account behind a mailed link of kind `salt`, and the link's extra `fields`.

    Forged, used, superseded, foreign or outdated links: `LinkInvalid`; older than `max_age`: `LinkExpired`. The
    salt keeps the kinds apart: a confirmation link is no reset link."""
    invalid = LinkInvalid(_("This link is not valid: it is incomplete, has been used already, or the account has "
                            "changed since it was sent. Log in to ask for a new one."))
    try:
        data = _link_serializer(salt).loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkExpired(_("This link has expired. Log in and ask for a new one with the button at the top of "
                            "the page.")) from None
    except BadSignature:
        raise invalid from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("e"), str) \
            or not isinstance(data.get("s"), str) or not all(isinstance(data.get(name), str) for name in fields):
        raise invalid
    user = db.session.get(User, data["u"])
    if user is None or user.is_disabled or not hmac.compare_digest(data["e"], user.email) \
            or not hmac.compare_digest(data["s"], _link_state(user, extra=extra(user))):
        raise invalid
    return user, {name: data[name] for name in fields}
