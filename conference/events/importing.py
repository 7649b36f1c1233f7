"""Importing an organiser's registration list from CSV: every row is checked before anything is written."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from conference.auth import accounts
from conference.auth.models import User
from conference.core.errors import DomainError
from conference.core.permissions import Role
from conference.events import services as event_services
from conference.events.models import Event, PendingRole
from conference.extensions import db

REQUIRED_COLUMNS = ("email", "name")
OPTIONAL_COLUMNS = ("role", "password")
MAX_ROWS = 100_000


class ImportFailed(Exception):
    """A row is bad; the message names the line. Nothing has been written."""


@dataclass(frozen=True)
class Registration:
    line: int
    email: str
    name: str
    role: str
    password: str


@dataclass
class ImportReport:
    created: int = 0
    existing: int = 0
    notes: list[str] = field(default_factory=list)  # what the import did not do, one line per row


def import_registrations(event: Event, rows: Iterable[list[str]]) -> ImportReport:
    """Create missing accounts and give everyone their role. Flushes only.

    The operator vouches for the addresses of the accounts the import creates, so they count as confirmed.
    An existing account keeps its password (a password column is reported, never applied); if its address
    is not confirmed, its role waits for the confirmation (see `set_role`) and the report says so: whoever
    registered the address may not be the person on the list.
    """
    parsed = _parse(rows)
    existing = {u.email: u for u in db.session.scalars(
        select(User).where(User.email.in_([row.email for row in parsed])))}
    report = ImportReport()
    with db.session.no_autoflush:
        for row in parsed:
            try:
                user = existing.get(row.email)
                if user is None:
                    user = accounts.create_user(email=row.email, name=row.name, verified=True,
                                                     password=row.password or secrets.token_urlsafe(24))
                    report.created += 1
                else:
                    report.existing += 1
                    if row.password:
                        report.notes.append(f"line {row.line}: {row.email} has an account already; "
                                            f"its password was not changed")
                result = event_services.set_role(event, user=user, role=row.role, keep_higher=True)
            except DomainError as error:
                raise ImportFailed(f"line {row.line}: {error.message}") from None
            if isinstance(result, PendingRole):
                report.notes.append(f"line {row.line}: {row.email} has an account whose address is not confirmed; "
                                    f"the role {row.role} takes effect once its owner confirms it")
    return report


def _parse(rows: Iterable[list[str]]) -> list[Registration]:
    iterator = iter(rows)
    try:
        header = [column.strip().lower() for column in next(iterator)]
    except StopIteration:
        raise ImportFailed("line 1: the file is empty; expected a header with email,name") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise ImportFailed(f"line 1: header needs columns email,name (optional role,password); "
                           f"missing: {', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'}")
    parsed: list[Registration] = []
    seen: set[str] = set()
    for line, values in enumerate(iterator, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise ImportFailed(f"line {line}: expected {len(header)} columns, found {len(values)}")
        record = dict(zip(header, (v.strip() for v in values), strict=True))
        try:
            email = accounts.validate_email(record["email"])
            name = accounts.validate_name(record["name"])
        except DomainError as error:
            raise ImportFailed(f"line {line}: {error.message}") from None
        role = (record.get("role") or Role.ATTENDEE).lower()
        if role not in set(Role):
            raise ImportFailed(f"line {line}: unknown role {role!r}; use one of {', '.join(Role)}")
        if email in seen:
            raise ImportFailed(f"line {line}: {email} appears twice")
        seen.add(email)
        password = record.get("password") or ""
        if password:
            try:
                accounts.validate_password(password)
            except DomainError as error:
                raise ImportFailed(f"line {line}: {error.message}") from None
        parsed.append(Registration(line, email, name, role, password))
        if len(parsed) > MAX_ROWS:
            raise ImportFailed(f"line {line}: at most {MAX_ROWS} rows per import")
    return parsed
