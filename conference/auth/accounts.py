"""Accounts: the rules for names, addresses and passwords, password hashing, creating and finding accounts, login.

Services flush, never commit."""

from __future__ import annotations

import os
import re
import secrets
import threading

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from conference.auth.models import User
from conference.core import native
from conference.core.db import utcnow
from conference.core.errors import Conflict, ValidationFailed
from conference.core.text import has_forbidden_line_text
from conference.extensions import db
from conference.settings import get_settings

EMAIL_PATTERN = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,189}\.[^@\s<>\"'.]{2,}$")

# A hash of a random password, checked when the e-mail is unknown so both cases cost the same time.
_DUMMY_HASH: str | None = None
# scrypt takes tens of milliseconds and 32 MB per hash: it runs in a native thread (the event loop serves on
# meanwhile), a few at a time, so a login flood can neither fill memory nor take every native thread (upload
# hashing uses them too). A green semaphore under eventlet/gevent: this module is imported after patching.
_HASHING = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))


def normalise_email(email: str) -> str:
    return email.strip().lower()


def validate_name(name: str) -> str:
    # Checked before the spaces are tidied: a line break is refused, not quietly made a space (names go into
    # mails, and "Anna\nBcc: x" should come back to its sender as an error, not be stored as "Anna Bcc: x").
    if has_forbidden_line_text(name):
        raise ValidationFailed(_("The name contains characters that are not allowed."), field="name")
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed(_("Please enter your name."), field="name")
    if len(name) > 120:
        raise ValidationFailed(_("The name may have at most 120 characters."), field="name")
    return name


def validate_email(email: str) -> str:
    email = normalise_email(email)
    if len(email) > 254 or not EMAIL_PATTERN.match(email):
        raise ValidationFailed(_("Please enter a valid e-mail address."), field="email")
    return email


def validate_password(password: str) -> str:
    minimum = get_settings().password_min_length
    if len(password) < minimum:
        raise ValidationFailed(
            _("The password must have at least %(n)d characters.", n=minimum), field="password"
        )
    if len(password) > 1024:
        raise ValidationFailed(_("The password is too long."), field="password")
    return password


def hash_password(password: str) -> str:
    method = current_app.config["PASSWORD_HASH_METHOD"]
    with _HASHING:
        return str(native.submit(generate_password_hash, password, method)())


def verify_password(password_hash: str, password: str) -> bool:
    with _HASHING:
        return bool(native.submit(check_password_hash, password_hash, password)())


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(*, email: str, name: str, password: str, verified: bool, is_admin: bool = False,
                password_hash: str | None = None) -> User:
    """Create an account for an operator (CLI, imports, tests). Raises `Conflict` if the e-mail is taken.

    `verified` is required so that every caller decides: an operator who creates an account vouches for its
    address; self-registration goes through `registration.register_account` and starts unconfirmed."""
    email = validate_email(email)
    name = validate_name(name)
    if password_hash is None:
        password_hash = hash_password(validate_password(password))
    if db.session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise Conflict(_("An account with this e-mail address already exists."), field="email")
    user = User(email=email, name=name, password_hash=password_hash, is_admin=is_admin,
                email_verified_at=utcnow() if verified else None)
    db.session.add(user)
    db.session.flush()
    return user


def change_name(user: User, *, name: str) -> None:
    """Set the account's name (line breaks and direction overrides refused: it goes into mails)."""
    user.name = validate_name(name)
    db.session.flush()


def authenticate(email: str, password: str) -> User | None:
    """The user if e-mail and password match, else None. Same work for unknown users and wrong passwords."""
    global _DUMMY_HASH
    user = find_user_by_email(email) if len(email) <= 254 else None
    if user is None or user.is_disabled:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(16))
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    return user
