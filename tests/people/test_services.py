"""People services: registration questions, answers, the attendee list, exports, the account's rights."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from conference.auth import privacy
from conference.core.errors import NotAllowed, ValidationFailed
from conference.core.permissions import Role
from conference.events.services import register_attendee
from conference.extensions import db
from conference.people import exports, services
from conference.people.models import RegistrationAnswer

SECTORS = "Wirtschaft\nWissenschaft\nPolitik und Verwaltung\nSonstiges"


def _ask_everything(event, *, public: bool = True) -> None:
    services.update_settings(event, asks_organisation=True, asks_sector=True, sectors=SECTORS,
                             asks_listing_consent=True, has_public_list=public)
    db.session.commit()


def test_settings_default_asks_nothing(create_event) -> None:
    event = create_event()
    settings = services.settings_for(event)
    assert (settings.asks_anything, settings.has_public_list) == (False, False)
    assert settings.sector_list == ["Wirtschaft", "Wissenschaft", "Politik und Verwaltung", "Sonstiges"]


@pytest.mark.parametrize(("sectors", "public", "consent", "field"), [
    ("", False, True, "sectors"),
    ("A\na", False, True, "sectors"),
    ("x" * 101, False, True, "sectors"),
    ("\n".join(f"S{i}" for i in range(21)), False, True, "sectors"),
    ("A", True, False, "has_public_list"),
])
def test_settings_refuse_bad_lists(create_event, sectors, public, consent, field) -> None:
    event = create_event()
    with pytest.raises(ValidationFailed) as refused:
        services.update_settings(event, asks_organisation=True, asks_sector=True, sectors=sectors,
                                 asks_listing_consent=consent, has_public_list=public)
    assert refused.value.field == field


def test_register_with_answers_stores_them(create_event, create_user) -> None:
    event = create_event()
    _ask_everything(event)
    user = create_user(name="Berta Beispiel")
    services.register_with_answers(event, user=user, code=None, organisation="  Stadt Kassel ",
                                   sector="Politik und Verwaltung", is_listed=True)
    db.session.commit()
    answer = services.answer_of(event, user)
    assert (answer.organisation, answer.sector, answer.is_listed) == ("Stadt Kassel", "Politik und Verwaltung", True)
    assert user.role_in(event) == Role.ATTENDEE


def test_wrong_sector_registers_nobody(create_event, create_user) -> None:
    event = create_event()
    _ask_everything(event)
    user = create_user()
    with pytest.raises(ValidationFailed):
        services.register_with_answers(event, user=user, code=None, sector="Mars")
    db.session.rollback()
    user.forget_roles()
    assert user.role_in(event) is None
    assert db.session.query(RegistrationAnswer).count() == 0


def test_closed_registration_refused_with_answers(create_event, create_user) -> None:
    event = create_event(registration_mode="closed")
    _ask_everything(event)
    with pytest.raises(NotAllowed):
        services.register_with_answers(event, user=create_user(), code=None, organisation="X")


def test_questions_not_asked_are_not_stored(create_event, create_user, grant) -> None:
    event = create_event()
    services.update_settings(event, asks_organisation=True, asks_sector=False, sectors=SECTORS,
                             asks_listing_consent=False, has_public_list=False)
    user = create_user()
    grant(event, user, Role.ATTENDEE)
    answer = services.save_answers(event, user=user, organisation="Uni", sector="Wirtschaft", is_listed=True)
    assert (answer.organisation, answer.sector, answer.is_listed) == ("Uni", None, False)


def test_answers_need_registration(create_event, create_user) -> None:
    event = create_event()
    _ask_everything(event)
    with pytest.raises(ValidationFailed):
        services.save_answers(event, user=create_user(), organisation="X")


def _world(create_event, person):
    event = create_event()
    _ask_everything(event)
    people = {
        "anna": person(event, Role.ATTENDEE, name="Anna Ärztin"),
        "bert": person(event, Role.SPEAKER, name="Bert Bauer"),
        "carl": person(event, None, name="Carl Chef", verified=False),
    }
    register_attendee(event, user=people["carl"])  # an unconfirmed address may register as an attendee
    services.save_answers(event, user=people["anna"], organisation="Universität Kassel", sector="Wissenschaft",
                          is_listed=True)
    services.save_answers(event, user=people["bert"], organisation="=HYPERLINK(\"http://evil\")",
                          sector="Wirtschaft", is_listed=False)
    db.session.commit()
    return event, people


def test_attendee_rows_filters_and_search(create_event, person) -> None:
    event, _people = _world(create_event, person)
    names = lambda **kw: [r.name for r in services.attendee_rows(event, **kw)]  # noqa: E731
    assert names() == ["Anna Ärztin", "Bert Bauer", "Carl Chef"]
    assert names(sector="Wissenschaft") == ["Anna Ärztin"]
    assert names(sector="-") == ["Carl Chef"]
    assert names(role="speaker") == ["Bert Bauer"]
    assert names(role="nonsense") == ["Anna Ärztin", "Bert Bauer", "Carl Chef"]
    assert names(search="ärzt") == ["Anna Ärztin"]
    assert names(search="UNIVERSITÄT") == ["Anna Ärztin"]
    carl = services.attendee_rows(event, search="carl")[0]
    assert carl.is_confirmed is False and carl.organisation == ""


def test_public_participants_only_consented(create_event, person) -> None:
    event, _people = _world(create_event, person)
    assert services.public_participants(event) == [("Anna Ärztin", "Universität Kassel")]
    services.update_settings(event, asks_organisation=True, asks_sector=True, sectors=SECTORS,
                             asks_listing_consent=True, has_public_list=False)
    assert services.public_participants(event) == []


@pytest.mark.parametrize("value", ["=1+1", "+49 561", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_safe_cell_neutralises_formula_starts(value) -> None:
    assert exports.safe_cell(value) == "'" + value


def test_safe_cell_keeps_plain_text() -> None:
    assert exports.safe_cell("Universität Kassel") == "Universität Kassel"


def test_csv_export_reads_back_with_csv_module(create_event, person) -> None:
    event, _people = _world(create_event, person)
    body = exports.to_csv(services.attendee_rows(event), event.timezone)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Name", "E-mail", "Organisation", "Sector"]
    assert [r[0] for r in rows[1:]] == ["Anna Ärztin", "Bert Bauer", "Carl Chef"]
    assert rows[2][2] == "'=HYPERLINK(\"http://evil\")"
    assert not [cell for row in rows for cell in row if cell and cell[0] in "=+-@\t\r"]


def test_xlsx_export_has_no_formula_cells(create_event, person) -> None:
    event, _people = _world(create_event, person)
    body = exports.to_xlsx(services.attendee_rows(event), event.timezone)
    sheet = load_workbook(io.BytesIO(body)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert [row[0] for row in values[1:]] == ["Anna Ärztin", "Bert Bauer", "Carl Chef"]
    assert values[2][2] == "'=HYPERLINK(\"http://evil\")"
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row if cell.value is not None)


def test_account_data_and_erasure(create_event, person) -> None:
    event, people = _world(create_event, person)
    data = privacy.export_account_data(people["anna"])
    assert data["registration_answers"] == [{
        "event": event.slug, "organisation": "Universität Kassel", "sector": "Wissenschaft",
        "listed_publicly": True, "updated_at": data["registration_answers"][0]["updated_at"]}]
    services.erase_account(None, user_id=people["anna"].id)
    db.session.commit()
    assert services.answer_of(event, people["anna"]) is None
    assert services.public_participants(event) == []
