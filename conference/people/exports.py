"""The attendee list as CSV and XLSX, safe to open in a spreadsheet (no cell is read as a formula)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from openpyxl import Workbook

from conference.people.services import AttendeeRow

#: A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Text that a spreadsheet shows as text: a leading apostrophe before a formula start (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def table(rows: Sequence[AttendeeRow], timezone: str) -> list[list[str]]:
    """Header and rows, every cell text and neutralised; times in the event's zone."""
    zone = ZoneInfo(timezone)

    def when(value: datetime) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    header = [_("Name"), _("E-mail"), _("Organisation"), _("Sector"), _("Role"), _("Registered at"),
              _("Address confirmed"), _("Public list")]
    body = [[row.name, row.email, row.organisation, row.sector, row.role, when(row.registered_at),
             _("yes") if row.is_confirmed else _("no"), _("yes") if row.is_listed else _("no")] for row in rows]
    return [[safe_cell(cell) for cell in line] for line in [header, *body]]


def to_csv(rows: Sequence[AttendeeRow], timezone: str) -> bytes:
    """UTF-8 with a byte order mark (Excel then reads the umlauts), comma-separated, every field quoted."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows(table(rows, timezone))
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(rows: Sequence[AttendeeRow], timezone: str) -> bytes:
    """One sheet; every cell a string cell (openpyxl would store a text starting with "=" as a formula)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Attendees")[:31]
    for line in table(rows, timezone):
        sheet.append(line)
    for column in sheet.iter_cols(min_row=1, max_row=sheet.max_row):
        for cell in column:
            cell.data_type = "s"  # never "f": the apostrophe keeps the text visible, the type keeps it text
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
