"""Self-registration and confirmed addresses: the confirmation link, confirming it, changing the address.

Services flush, never commit."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from conference.auth.accounts import (
    find_user_by_email,
    hash_password,
    validate_email,
    validate_name,
    validate_password,
    verify_password,
)
from conference.auth.links import (
    ADDRESS_CHANGE_SALT,
    ADDRESS_LINK_SALT,
    link_hours,
    load_link,
    over_mail_limit,
    refuse_over_mail_limit,
    signed_token,
)
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.errors import Conflict, ValidationFailed
from conference.core.mail import external_url, send_mail
from conference.core.signals import address_verified
from conference.extensions import db
from conference.settings import get_settings


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
    if not existing.is_disabled and not over_mail_limit(email):
        _mail_registration_notice(existing, locale=existing.locale or locale, next_path=next_path)
    return None


def send_confirmation(user: User, *, locale: str, next_path: str | None = None) -> None:
    """Mail the confirmation link again (at most `MAIL_REQUEST_LIMIT_ACCOUNT` mails per address). Side effect:
    a mail."""
    if user.is_verified:
        raise Conflict(_("Your e-mail address is already confirmed."), code="already_verified")
    refuse_over_mail_limit(user.email)
    _mail_confirmation(user, locale=locale, next_path=next_path)


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
            name=user.name, link=link, hours=link_hours())
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
            name=user.name, login=login_link, link=link, hours=link_hours())
    send_mail(to=user.email, subject=subject, body=body)


def address_link(user: User, *, next_path: str | None = None) -> str:
    """The absolute link (from `EXTERNAL_URL`, never the Host header) that proves the owner reads this address.

    Signed, expiring (`ADDRESS_LINK_MAX_AGE`), bound to the account, its address and its state."""
    values: dict[str, Any] = {"token": signed_token(user, salt=ADDRESS_LINK_SALT)}
    if next_path:
        values["next"] = next_path
    return external_url("auth.confirm_address", **values)


def load_address_link(token: str) -> User:
    """The account behind a mailed link. Forged, used, foreign or outdated links: `LinkInvalid`; old: `LinkExpired`."""
    return load_link(token, salt=ADDRESS_LINK_SALT, max_age=get_settings().address_link_max_age)[0]


def verify_address(user: User) -> bool:
    """Record that the owner proved the address; False if that happened before.

    Side effects: receivers of `address_verified` act in this unit of work (the events domain applies the
    roles that waited for it, with their membership change signals after the commit)."""
    if user.email_verified_at is not None:
        return False
    user.email_verified_at = utcnow()
    db.session.flush()
    _announce_verified(user)
    return True


def _announce_verified(user: User) -> None:
    address_verified.send(current_app._get_current_object(), user_id=user.id)  # type: ignore[attr-defined]


def confirm_address(user: User, *, signed_in_user_id: int | None, password: str) -> bool:
    """Confirm the address of `user` from its mailed link. Returns whether it was unconfirmed.

    The link proves the mailbox; the account must be proved too, by being logged in as it or by its password.
    Otherwise the owner of an address, following a link sent after someone else registered it, would confirm
    that stranger's account."""
    if signed_in_user_id != user.id and not (password and verify_password(user.password_hash, password)):
        raise ValidationFailed(_("The password is not correct."), field="password")
    return verify_address(user)


# --- changing the address ---------------------------------------------------------------------------------


def _refuse_taken(new_email: str) -> None:
    if find_user_by_email(new_email) is not None:
        raise Conflict(_("This address is used by another account. Choose a different address."), field="email",
                       code="email_taken")


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
    _refuse_taken(new_email)
    refuse_over_mail_limit(user.email)
    link = external_url("auth.confirm_address_change",
                        token=signed_token(user, salt=ADDRESS_CHANGE_SALT, n=new_email))
    with force_locale(user.locale or locale):
        send_mail(to=new_email, subject=_("Please confirm your new e-mail address"), body=_(
            "Hello %(name)s,\n\nplease confirm that %(email)s is to be the new address of your account by "
            "opening this link:\n\n%(link)s\n\nThe link works once and for %(hours)d hours. Until then your "
            "account keeps its old address.\n\nYou did not ask for this? Then ignore this mail.\n",
            name=user.name, email=new_email, link=link, hours=link_hours()))
        send_mail(to=user.email, subject=_("Your e-mail address is about to change"), body=_(
            "Hello %(name)s,\n\nsomeone logged in to your account asked to change its e-mail address to "
            "%(email)s. It changes once the link sent to that address is opened.\n\nIf it was not you, change "
            "your password now: that makes the link void and logs out everyone else.\n",
            name=user.name, email=new_email))


def load_address_change_link(token: str) -> tuple[User, str]:
    """The account and its new address from a change link; `LinkInvalid` / `LinkExpired` as elsewhere. The link
    is bound to the old address, so it is void once the change is made (or another one was)."""
    user, data = load_link(token, salt=ADDRESS_CHANGE_SALT, max_age=get_settings().address_link_max_age,
                           fields=("n",))
    return user, data["n"]


def change_address(user: User, *, new_email: str) -> None:
    """Make the confirmed `new_email` the account's address (it counts as confirmed: the link proved it).

    Refused if another account took the address meanwhile. Side effect: links sent to the old address are void."""
    new_email = validate_email(new_email)
    _refuse_taken(new_email)
    was_verified = user.is_verified
    user.email = new_email
    user.email_verified_at = utcnow()
    db.session.flush()
    if not was_verified:
        _announce_verified(user)
