"""Account rules: registration, confirmed addresses, passwords, login sessions, API tokens.

Services flush, never commit."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from conference.auth.models import ApiToken, LoginSession, User, hash_secret
from conference.core import after_commit, native
from conference.core.db import utcnow
from conference.core.errors import Conflict, DomainError, NotFound, RateLimited, ValidationFailed
from conference.core.mail import external_url, send_mail
from conference.core.ratelimit import Counter
from conference.core.signals import address_verified, logins_ended
from conference.core.text import has_forbidden_line_text
from conference.extensions import db, socketio
from conference.settings import get_settings

EMAIL_PATTERN = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,189}\.[^@\s<>\"'.]{2,}$")
TOKEN_PREFIX = "cft_"

# A hash of a random password, checked when the e-mail is unknown so both cases cost the same time.
_DUMMY_HASH: str | None = None
# scrypt takes tens of milliseconds and 32 MB per hash: it runs in a native thread (the event loop serves on
# meanwhile), a few at a time, so a login flood can neither fill memory nor take every native thread (upload
# hashing uses them too). A green semaphore under eventlet/gevent: this module is imported after patching.
_HASHING = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))

ADDRESS_LINK_SALT = "account-address-link"
PASSWORD_RESET_SALT = "account-password-reset"
ADDRESS_CHANGE_SALT = "account-address-change"


class LinkInvalid(NotFound):
    code = "invalid_link"


class LinkExpired(DomainError):
    code = "link_expired"
    status = 410


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
    address; self-registration goes through `register_account` and starts unconfirmed."""
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


# --- self-registration and confirmed addresses ------------------------------------------------------------


def register_account(*, email: str, name: str, password: str, locale: str,
                     next_path: str | None = None) -> User | None:
    """Self-registration, answering alike whether or not the address has an account (no enumeration).

    Returns the new account, or None when the address had one (the caller must answer the same either way).

    A new address gets an unconfirmed account and a confirmation mail. An address that has an account gets
    no second one; its owner is told by mail instead (at most `MAIL_REQUEST_LIMIT_ACCOUNT` mails per address), with a
    link to log in and one to choose a new password. Both paths hash the password, so both take as long.
    Side effects: one mail (an outbox row now, or SMTP after the commit).
    """
    email = validate_email(email)
    name = validate_name(name)
    password_hash = hash_password(validate_password(password))
    existing = find_user_by_email(email)
    if existing is None:
        user = User(email=email, name=name, password_hash=password_hash)
        db.session.add(user)
        db.session.flush()
        _mail_confirmation(user, locale=locale, next_path=next_path)
        return user
    if not existing.is_disabled and not _over_mail_limit(email):
        _mail_registration_notice(existing, locale=existing.locale or locale, next_path=next_path)
    return None


def send_confirmation(user: User, *, locale: str, next_path: str | None = None) -> None:
    """Mail the confirmation link again (at most `MAIL_REQUEST_LIMIT_ACCOUNT` mails per address). Side effect:
    a mail."""
    if user.is_verified:
        raise Conflict(_("Your e-mail address is already confirmed."), code="already_verified")
    if _over_mail_limit(user.email):
        raise RateLimited(_("The link has been sent several times within the last hour. Please wait a while "
                            "and look for it in your mailbox (also in the spam folder)."))
    _mail_confirmation(user, locale=locale, next_path=next_path)


def _over_mail_limit(email: str) -> bool:
    """Count one account mail to `email`; True when it is one too many (confirmation links and notices share it)."""
    counter = Counter("MAIL_REQUEST_LIMIT_ACCOUNT", email)
    return counter.hit() > counter.limit.allowed


def _link_hours() -> int:
    return get_settings().address_link_max_age // 3600


def _mail_confirmation(user: User, *, locale: str, next_path: str | None) -> None:
    link = address_link(user, next_path=next_path)
    with force_locale(locale):
        subject = _("Please confirm your e-mail address")
        body = _(
            "Hello %(name)s,\n\nplease confirm that this is your e-mail address by opening this link:\n\n"
            "%(link)s\n\nThe link works once and for %(hours)d hours. Until you confirm, organisers cannot give "
            "your account a role and speaker invitations cannot be accepted with it.\n\n"
            "You did not create an account? Then someone else entered your address. If you want to use the "
            "address yourself, open the link anyway and choose your own password there: whoever registered it "
            "loses access. Otherwise ignore this mail.\n",
            name=user.name, link=link, hours=_link_hours())
    send_mail(to=user.email, subject=subject, body=body)


def _mail_registration_notice(user: User, *, locale: str, next_path: str | None) -> None:
    link = address_link(user, next_path=next_path)
    login_link = external_url("auth.login", next=next_path) if next_path else external_url("auth.login")
    with force_locale(locale):
        subject = _("Someone tried to register with your e-mail address")
        body = _(
            "Hello %(name)s,\n\nsomeone tried to create an account with your e-mail address. There is an account "
            "with this address already, so no second one was created.\n\nIf it was you, log in here:\n\n"
            "%(login)s\n\nIf you have forgotten the password, or did not create the account that uses your "
            "address, choose a new password with this link (it works once and for %(hours)d hours):\n\n"
            "%(link)s\n\nIf it was not you, ignore this mail; nothing has changed.\n",
            name=user.name, login=login_link, link=link, hours=_link_hours())
    send_mail(to=user.email, subject=subject, body=body)


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


def _signed_token(user: User, *, salt: str, extra: str = "", **data: str) -> str:
    return _link_serializer(salt).dumps({"u": user.id, "e": user.email, "s": _link_state(user, extra=extra), **data})


def _load_link(token: str, *, salt: str, max_age: int, extra: Callable[[User], str] = lambda _user: "",
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


def address_link(user: User, *, next_path: str | None = None) -> str:
    """The absolute link (from `EXTERNAL_URL`, never the Host header) that proves the owner reads this address.

    Signed, expiring (`ADDRESS_LINK_MAX_AGE`), bound to the account, its address and its state."""
    values: dict[str, Any] = {"token": _signed_token(user, salt=ADDRESS_LINK_SALT)}
    if next_path:
        values["next"] = next_path
    return external_url("auth.confirm_address", **values)


def load_address_link(token: str) -> User:
    """The account behind a mailed link. Forged, used, foreign or outdated links: `LinkInvalid`; old: `LinkExpired`."""
    return _load_link(token, salt=ADDRESS_LINK_SALT, max_age=get_settings().address_link_max_age)[0]


def verify_address(user: User) -> bool:
    """Record that the owner proved the address; False if that happened before.

    Side effects: receivers of `address_verified` act in this unit of work (the events domain applies the
    roles that waited for it, with their membership change signals after the commit)."""
    if user.email_verified_at is not None:
        return False
    user.email_verified_at = utcnow()
    db.session.flush()
    address_verified.send(current_app._get_current_object(), user_id=user.id)  # type: ignore[attr-defined]
    return True


def confirm_address(user: User, *, signed_in_user_id: int | None, password: str) -> bool:
    """Confirm the address of `user` from its mailed link. Returns whether it was unconfirmed.

    The link proves the mailbox; the account must be proved too, by being logged in as it or by its password.
    Otherwise the owner of an address, following a link sent after someone else registered it, would confirm
    that stranger's account."""
    if signed_in_user_id != user.id and not (password and verify_password(user.password_hash, password)):
        raise ValidationFailed(_("The password is not correct."), field="password")
    return verify_address(user)


def set_password_by_link(user: User, *, new_password: str) -> None:
    """The holder of a mailed link chooses a new password; the link proved the address, so it is confirmed.

    Whoever knew the old password (e.g. the stranger who registered the address) is shut out: every login
    session ends and every API token is revoked (see `end_logins`)."""
    user.password_hash = hash_password(validate_password(new_password))
    db.session.flush()
    verify_address(user)
    end_logins(user, keep_login_token=None)


# --- password reset ---------------------------------------------------------------------------------------


def _reset_state(user: User) -> str:
    return user.password_reset_at.isoformat() if user.password_reset_at else "none"


def password_reset_link(user: User) -> str:
    """A new reset link for `user`; every older one is void from now on (`password_reset_at` is in its state).

    Signed, expiring (`PASSWORD_RESET_MAX_AGE`), single use: the new password changes the state."""
    user.password_reset_at = utcnow()
    db.session.flush()
    return external_url("auth.reset_password",
                        token=_signed_token(user, salt=PASSWORD_RESET_SALT, extra=_reset_state(user)))


def load_password_reset_link(token: str) -> User:
    """The account behind a reset link; `LinkInvalid` / `LinkExpired` as for `load_address_link`."""
    return _load_link(token, salt=PASSWORD_RESET_SALT, max_age=get_settings().password_reset_max_age,
                      extra=_reset_state)[0]


def request_password_reset(email: str, *, locale: str) -> None:
    """Mail a reset link to `email` if an enabled account has it; answer alike either way (no enumeration).

    Every well-formed address counts against `MAIL_REQUEST_LIMIT_ACCOUNT`, known or not, and over the limit
    the mail is skipped without a word: a refusal would tell that the address was asked for before (and a
    flood of requests cannot fill the owner's mailbox). Side effect: at most one mail."""
    email = validate_email(email)
    over_limit = _over_mail_limit(email)
    user = find_user_by_email(email)
    if user is None or user.is_disabled or over_limit:
        return
    link = password_reset_link(user)
    with force_locale(user.locale or locale):
        subject = _("Choose a new password")
        body = _(
            "Hello %(name)s,\n\nsomeone (hopefully you) asked to choose a new password for your account. Open "
            "this link to do so:\n\n%(link)s\n\nThe link works once and for %(minutes)d minutes; a newer "
            "request makes it void. Choosing a new password logs your account out everywhere else.\n\nIf you "
            "did not ask for it, ignore this mail: your password stays as it is.\n",
            name=user.name, link=link, minutes=get_settings().password_reset_max_age // 60)
    send_mail(to=user.email, subject=subject, body=body)


_reset_jobs: list[Any] = []


def request_password_reset_later(email: str, *, locale: str) -> None:
    """Check the address's form now; look it up and mail (`request_password_reset`) after the commit, in a
    background task of the configured async mode, so the answer does not wait for it.

    Only a known address costs a link, an UPDATE and a mail; an answer that waited for them took about 17 ms
    longer on SQLite for known addresses than for unknown ones (median, test client), which tells a patient
    stranger who has an account. Side effect after the commit: the background task."""
    email = validate_email(email)
    after_commit.defer(_start_reset_job, current_app._get_current_object(),  # type: ignore[attr-defined]
                       email, locale)


def _start_reset_job(app: Flask, email: str, locale: str) -> None:
    _reset_jobs.append(socketio.start_background_task(_reset_job, app, email, locale))
    del _reset_jobs[:-50]


def _reset_job(app: Flask, email: str, locale: str) -> None:
    with app.app_context():
        try:
            request_password_reset(email, locale=locale)
            after_commit.commit()
        except Exception:  # a background task has nobody to answer: log, never lose the worker
            db.session.rollback()
            app.logger.exception("password reset mail for a requested address failed")
        finally:
            db.session.remove()


def wait_for_reset_jobs(timeout: float = 10.0) -> None:
    """Join the reset tasks started so far (tests and shutdown)."""
    for task in list(_reset_jobs):
        join = getattr(task, "join", None)
        if join is not None:
            join(timeout)
    _reset_jobs.clear()


def reset_password(user: User, *, new_password: str) -> None:
    """The holder of a reset link sets a new password: as `set_password_by_link` (the address counts as
    confirmed, every login session, API token and socket of the account ends); the link is used up."""
    set_password_by_link(user, new_password=new_password)


# --- name and address -------------------------------------------------------------------------------------


def change_name(user: User, *, name: str) -> None:
    """Set the account's name (line breaks and direction overrides refused: it goes into mails)."""
    user.name = validate_name(name)
    db.session.flush()


def request_address_change(user: User, *, new_email: str, password: str, locale: str) -> None:
    """Mail a confirmation link to `new_email`; the address changes only when it is opened.

    The password proves the account (a stolen browser session alone cannot move the account away). An address
    of another account is refused saying only that; the callers count these requests (`MAIL_REQUEST_LIMIT_*`),
    so nobody can test addresses in bulk. Side effects: a link to the new address, a notice to the old one
    (whose owner can void the link by changing the password)."""
    if not verify_password(user.password_hash, password):
        raise ValidationFailed(_("The password is not correct."), field="password")
    new_email = validate_email(new_email)
    if new_email == user.email:
        raise ValidationFailed(_("This is your address already."), field="email")
    if find_user_by_email(new_email) is not None:
        raise Conflict(_("This address is used by another account. Choose a different address."), field="email",
                       code="email_taken")
    if _over_mail_limit(user.email):
        raise RateLimited(_("The link has been sent several times within the last hour. Please wait a while "
                            "and look for it in your mailbox (also in the spam folder)."))
    link = external_url("auth.confirm_address_change",
                        token=_signed_token(user, salt=ADDRESS_CHANGE_SALT, n=new_email))
    with force_locale(user.locale or locale):
        send_mail(to=new_email, subject=_("Please confirm your new e-mail address"), body=_(
            "Hello %(name)s,\n\nplease confirm that %(email)s is to be the new address of your account by "
            "opening this link:\n\n%(link)s\n\nThe link works once and for %(hours)d hours. Until then your "
            "account keeps its old address.\n\nYou did not ask for this? Then ignore this mail.\n",
            name=user.name, email=new_email, link=link, hours=_link_hours()))
        send_mail(to=user.email, subject=_("Your e-mail address is about to change"), body=_(
            "Hello %(name)s,\n\nsomeone logged in to your account asked to change its e-mail address to "
            "%(email)s. It changes once the link sent to that address is opened.\n\nIf it was not you, change "
            "your password now: that makes the link void and logs out everyone else.\n",
            name=user.name, email=new_email))


def load_address_change_link(token: str) -> tuple[User, str]:
    """The account and its new address from a change link; `LinkInvalid` / `LinkExpired` as elsewhere. The link
    is bound to the old address, so it is void once the change is made (or another one was)."""
    user, data = _load_link(token, salt=ADDRESS_CHANGE_SALT, max_age=get_settings().address_link_max_age,
                            fields=("n",))
    return user, data["n"]


def change_address(user: User, *, new_email: str) -> None:
    """Make the confirmed `new_email` the account's address (it counts as confirmed: the link proved it).

    Refused if another account took the address meanwhile. Side effect: links sent to the old address are void."""
    new_email = validate_email(new_email)
    if find_user_by_email(new_email) is not None:
        raise Conflict(_("This address is used by another account. Choose a different address."), field="email",
                       code="email_taken")
    was_verified = user.is_verified
    user.email = new_email
    user.email_verified_at = utcnow()
    db.session.flush()
    if not was_verified:
        address_verified.send(current_app._get_current_object(), user_id=user.id)  # type: ignore[attr-defined]


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


def change_password(user: User, *, current_password: str, new_password: str, keep_login_token: str | None) -> None:
    """Set a new password. Every other login session ends and every API token is revoked (see `end_logins`)."""
    if not verify_password(user.password_hash, current_password):
        raise ValidationFailed(_("The current password is not correct."), field="current_password")
    user.password_hash = hash_password(validate_password(new_password))
    db.session.flush()
    end_logins(user, keep_login_token=keep_login_token)


def end_logins(user: User, *, keep_login_token: str | None) -> None:
    """End every login session of `user` but the one of `keep_login_token` (None: all), revoke every API token.

    A password change is for when the old one may be known to someone else; tokens were issued to whoever knew
    it, so they go too. Side effect after the commit: the open sockets of the ended logins and of every token
    are closed (`logins_ended`, relayed to every worker)."""
    keep_hash = hash_secret(keep_login_token) if keep_login_token else None
    now = utcnow()
    ended = update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
    if keep_hash is not None:
        ended = ended.where(LoginSession.token_hash != keep_hash)
    db.session.execute(ended.values(ended_at=now))
    db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                       .values(revoked_at=now))
    after_commit.defer(logins_ended.send, current_app._get_current_object(),  # type: ignore[attr-defined]
                       user_id=user.id, keep_login_hash=keep_hash)


def end_login_session_of(user: User, *, login_session_id: int, current_login_token: str | None) -> bool:
    """End one of the user's own login sessions (another person's is not found). True if it was the current one.

    Side effect after the commit: the sockets of that login are closed (`logins_ended`)."""
    row = db.session.get(LoginSession, login_session_id)
    if row is None or row.user_id != user.id or row.ended_at is not None:
        raise NotFound(_("No such login."))
    row.ended_at = utcnow()
    db.session.flush()
    after_commit.defer(logins_ended.send, current_app._get_current_object(),  # type: ignore[attr-defined]
                       user_id=user.id, login_hash=row.token_hash)
    return bool(current_login_token) and hmac.compare_digest(row.token_hash, hash_secret(current_login_token or ""))


def active_login_sessions(user: User) -> list[LoginSession]:
    return list(db.session.scalars(
        select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .order_by(LoginSession.created_at.desc(), LoginSession.id.desc()).limit(100)))


def start_login_session(user: User, *, user_agent: str | None) -> str:
    """Create a server-side login session and return its secret token (kept in the signed cookie)."""
    token = secrets.token_urlsafe(32)
    db.session.add(LoginSession(user_id=user.id, token_hash=hash_secret(token), user_agent=(user_agent or "")[:255]))
    db.session.flush()
    return token


def end_login_session(token: str) -> None:
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == hash_secret(token), LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def user_for_login_token(token: str) -> User | None:
    if not token:
        return None
    row = db.session.execute(
        select(User, LoginSession.id)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(LoginSession.token_hash == hash_secret(token), LoginSession.ended_at.is_(None))
    ).first()
    if row is None or row[0].is_disabled:
        return None
    user: User = row[0]
    user._login_token = token  # type: ignore[attr-defined]
    return user


def issue_api_token(user: User, *, name: str = "") -> str:
    """Create an API token; the plain token is returned once and only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, name=name[:80], token_hash=hash_secret(token), prefix=token[:10]))
    db.session.flush()
    return token


def revoke_api_token(user: User, *, token_id: int) -> None:
    """Revoke one of the user's own tokens. Another user's token is reported as not found."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    db.session.flush()


def _is_token_shaped(token: str) -> bool:
    """Only strings that could be one of our tokens are looked up."""
    return token.startswith(TOKEN_PREFIX) and len(token) <= 100


def api_token_owner(token: str) -> tuple[int, int] | None:
    """(user id, token id) of an active token of an enabled account, in one query of plain columns.

    Every Socket.IO connection with a token asks this (a reconnect storm is thousands at once), and the
    socket needs only the ids, not a loaded User."""
    if not _is_token_shaped(token):
        return None
    row = db.session.execute(_token_owner_query(), {"token_hash": hash_secret(token)}).first()
    if row is None or row.is_disabled:
        return None
    return row.user_id, row.token_id


@lru_cache(maxsize=1)
def _token_owner_query() -> Any:
    """Built once: constructing the select costs more than running it."""
    token_hash: Any = bindparam("token_hash")
    return (select(User.id.label("user_id"), User.is_disabled, ApiToken.id.label("token_id"))
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)))


def user_for_api_token(token: str) -> User | None:
    if not _is_token_shaped(token):
        return None
    row = db.session.execute(
        select(User, ApiToken.id)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_secret(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None or row[0].is_disabled:
        return None
    return row[0]
