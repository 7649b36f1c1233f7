"""The `conference` command line: users create/list/token/import and demo."""

from __future__ import annotations

import json
from pathlib import Path

from conference.auth.models import ApiToken, User
from conference.core.permissions import Role
from conference.events.models import EventMembership
from conference.extensions import db


def test_users_create_with_role_reads_password_from_stdin(runner, create_event) -> None:
    event = create_event("cli-conf")
    result = runner.invoke(args=["users", "create", "--email", "Orga@Example.org", "--name", "Orga Nisator",
                                 "--event", "cli-conf", "--role", "organiser"], input="long-enough-pw\n")
    assert result.exit_code == 0, result.output
    user = db.session.query(User).one()
    assert user.email == "orga@example.org"
    assert user.email_verified_at is not None  # the operator vouches for the address
    assert user.role_in(event) == Role.ORGANISER
    from conference.auth.accounts import authenticate

    assert authenticate("orga@example.org", "long-enough-pw") is not None


def test_users_create_refuses_short_password_and_duplicates(runner, create_user) -> None:
    short = runner.invoke(args=["users", "create", "--email", "a@example.org", "--name", "A"], input="short\n")
    assert short.exit_code == 1
    assert "at least 10 characters" in short.output
    create_user("taken@example.org")
    taken = runner.invoke(args=["users", "create", "--email", "taken@example.org", "--name", "A"],
                          input="long-enough-pw\n")
    assert taken.exit_code == 1
    assert db.session.query(User).count() == 1


def test_users_list_filters_and_json(runner, create_event, person) -> None:
    event = create_event("cli-conf")
    person(event, Role.SPEAKER, email="speaker@example.org", name="Speaker")
    person(event, Role.ATTENDEE, email="attendee@example.org", name="Attendee")
    result = runner.invoke(args=["users", "list", "--event", "cli-conf", "--role", "speaker", "--json"])
    assert result.exit_code == 0
    assert [row["email"] for row in json.loads(result.output)] == ["speaker@example.org"]
    plain = runner.invoke(args=["users", "list"])
    assert "attendee@example.org" in plain.output and "speaker@example.org" in plain.output


def test_users_token_prints_a_working_token(runner, client, create_user) -> None:
    create_user("api@example.org")
    result = runner.invoke(args=["users", "token", "--email", "api@example.org"])
    assert result.exit_code == 0
    token = result.output.strip()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json["email"] == "api@example.org"
    unknown = runner.invoke(args=["users", "token", "--email", "nobody@example.org"])
    assert unknown.exit_code == 1


def test_users_import_creates_accounts_and_roles(runner, create_event, create_user, tmp_path: Path) -> None:
    event = create_event("cli-conf")
    create_user("existing@example.org")
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email,name,role\nneu@example.org,Neue Person,attendee\n"
                        "existing@example.org,Existing,speaker\n\n", encoding="utf-8")
    result = runner.invoke(args=["users", "import", str(csv_file), "--event", "cli-conf"])
    assert result.exit_code == 0, result.output
    assert "1 new accounts, 1 existing" in result.output
    roles = {m.user.email: m.role for m in db.session.query(EventMembership).filter_by(event_id=event.id)}
    assert roles == {"neu@example.org": "attendee", "existing@example.org": "speaker"}


def test_users_verify_applies_the_roles_that_waited(runner, create_event, create_user) -> None:
    from conference.events import services as event_services
    from conference.events.models import PendingRole

    event = create_event("cli-conf")
    user = create_user("late@example.org", verified=False)
    event_services.set_role(event, user=user, role="moderator")
    db.session.commit()
    assert user.role_in(event) is None and db.session.query(PendingRole).count() == 1
    listed = runner.invoke(args=["users", "list"])
    assert "late@example.org" in listed.output and "(unconfirmed)" in listed.output
    result = runner.invoke(args=["users", "verify", "--email", "late@example.org"])
    assert result.exit_code == 0 and "Confirmed <late@example.org>." in result.output
    db.session.expire_all()
    user.forget_roles()
    assert user.role_in(event) == Role.MODERATOR and db.session.query(PendingRole).count() == 0
    again = runner.invoke(args=["users", "verify", "--email", "late@example.org"])
    assert "was confirmed already" in again.output
    assert runner.invoke(args=["users", "verify", "--email", "nobody@example.org"]).exit_code == 1


def test_users_import_bad_row_names_line_and_imports_nothing(runner, create_event, tmp_path: Path) -> None:
    create_event("cli-conf")
    cases = {
        "email,name\nok@example.org,Ok\nnot-an-email,Bad\n": "line 3: Please enter a valid e-mail address.",
        "email,name,role\nok@example.org,Ok,attendee\nx@example.org,X,king\n": "line 3: unknown role 'king'",
        "email,name\nok@example.org,Ok\nok@example.org,Again\n": "line 3: ok@example.org appears twice",
        "email,name\nok@example.org,Ok,extra\n": "line 2: expected 2 columns, found 3",
        "mail,name\nok@example.org,Ok\n": "line 1: header needs columns email,name",
        "": "line 1: the file is empty",
        "email,name\nok@example.org,\n": "line 2: Please enter your name.",
    }
    for content, message in cases.items():
        csv_file = tmp_path / "bad.csv"
        csv_file.write_text(content, encoding="utf-8")
        result = runner.invoke(args=["users", "import", str(csv_file), "--event", "cli-conf"])
        assert result.exit_code == 1, content
        assert message in result.output, (content, result.output)
        assert db.session.query(User).count() == 0
        assert db.session.query(EventMembership).count() == 0


def test_users_import_unknown_event(runner, tmp_path: Path) -> None:
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email,name\na@example.org,A\n")
    result = runner.invoke(args=["users", "import", str(csv_file), "--event", "nope"])
    assert result.exit_code == 1
    assert "No event with slug 'nope'" in result.output


def test_demo_is_idempotent_and_writes_stable_tokens(runner, client, tmp_path: Path, app) -> None:
    from flask_migrate import downgrade

    downgrade(directory=app.extensions["migrate"].directory, revision="base")  # the demo migrates by itself
    db.drop_all()
    token_file = tmp_path / "tokens.txt"
    first = runner.invoke(args=["demo", "--attendees", "25", "--token-file", str(token_file)])
    assert first.exit_code == 0, first.output
    assert "orga@demo.invalid" in first.output
    tokens = token_file.read_text().split()
    assert len(tokens) == 25
    second = runner.invoke(args=["demo", "--attendees", "30", "--token-file", str(token_file)])
    assert second.exit_code == 0, second.output
    assert token_file.read_text().split()[:25] == tokens
    assert db.session.query(User).filter(User.email.like("teilnehmer%")).count() == 30
    assert db.session.query(ApiToken).count() == 30
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens[0]}"}).json
    assert me["email"] == "teilnehmer00001@demo.invalid"
    assert me["roles"] == {"digitalkonferenz-2027": "attendee"}
