"""`conference.settings`: every CONFERENCE_* variable typed and checked once; the README lists the same names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conference import create_app
from conference.settings import NAMES, SettingError, Settings, environment_settings, get_settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("TRUE", True), ("Yes", True), ("1", True), ("false", False), ("False", False), ("NO", False),
    ("0", False), ("off", False), ("", False)])
def test_booleans_accept_the_usual_words_in_any_case(text: str, expected: bool) -> None:
    assert environment_settings({"CONFERENCE_LIVE_DIRECT_WRITES": text}).live_direct_writes is expected


def test_direct_writes_false_is_false_not_a_true_string(tmp_path: Path) -> None:
    """The kill switch: 'false' used to reach the server as the (true) string 'false'."""
    settings = environment_settings({"CONFERENCE_LIVE_DIRECT_WRITES": "false"})
    assert settings.live_direct_writes is False
    app = create_app({"INSTANCE_PATH": str(tmp_path), "ASYNC_MODE": "threading", "LIVE_DIRECT_WRITES": "false"})
    assert get_settings(app).live_direct_writes is False
    assert app.config["LIVE_DIRECT_WRITES"] is False


@pytest.mark.parametrize(("variable", "value", "accepted"), [
    ("CONFERENCE_LIVE_DIRECT_WRITES", "maybe", "true or false (also 1/0, yes/no; any case)"),
    ("CONFERENCE_MAIL_PORT", "70000", "a whole number from 1 to 65535"),
    ("CONFERENCE_MAIL_PORT", "smtp", "a whole number from 1 to 65535"),
    ("CONFERENCE_SOCKET_TIMEOUT", "-1", "a number from 0 to 864000"),
    ("CONFERENCE_SOCKET_TIMEOUT", "nan", "a number from 0 to 864000"),
    ("CONFERENCE_LIVE_CHAT_RATE_LIMIT", "20", "'count/seconds'"),
    ("CONFERENCE_REGISTRATION_LIMIT", "0/60", "at least 1"),
    ("CONFERENCE_ASYNC_MODE", "tornado", "one of eventlet, gevent, threading"),
    ("CONFERENCE_SQLALCHEMY_ENGINE_OPTIONS", "[1]", "a JSON object"),
])
def test_a_bad_value_names_the_variable_and_what_it_accepts(variable: str, value: str, accepted: str) -> None:
    with pytest.raises(SettingError) as refused:
        environment_settings({variable: value})
    assert str(refused.value).startswith(variable)
    assert accepted in str(refused.value)


def test_typed_values_from_create_app_and_strings_from_the_environment_agree() -> None:
    typed = load_settings({"LIVE_CHAT_RATE_LIMIT": (5, 60), "MAIL_TIMEOUT": 2, "LIVE_LARGE_ROOM": 3})
    parsed = environment_settings({"CONFERENCE_LIVE_CHAT_RATE_LIMIT": "5/60", "CONFERENCE_MAIL_TIMEOUT": "2",
                                   "CONFERENCE_LIVE_LARGE_ROOM": "3"})
    assert typed == parsed
    assert parsed.live_chat_rate_limit == (5, 60) and parsed.live_large_room == 3
    assert Settings().live_direct_writes is True and Settings().workers == 1


def test_a_changed_config_value_is_parsed_again(app) -> None:  # type: ignore[no-untyped-def]
    app.config["PRESENTATION_MAX_BYTES"] = "1234"
    assert get_settings(app).presentation_max_bytes == 1234
    app.config["PRESENTATION_MAX_BYTES"] = "many"
    with pytest.raises(SettingError, match="CONFERENCE_PRESENTATION_MAX_BYTES"):
        get_settings(app)


def test_conference_with_a_bad_value_exits_with_one_clear_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CONFERENCE_INSTANCE_PATH": str(tmp_path),
           "CONFERENCE_LIVE_DIRECT_WRITES": "nein"}
    done = subprocess.run([sys.executable, "-c", "from conference.entry import main; main()", "run"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "conference: CONFERENCE_LIVE_DIRECT_WRITES must be true or false (also 1/0, yes/no; any case), not 'nein'"]
    assert not (tmp_path / "conference.sqlite3").exists()  # nothing started


def readme_settings() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `CONFERENCE_"):
            first_column = line.split("|")[1]
            names |= set(re.findall(r"`CONFERENCE_([A-Z0-9_]+)`", first_column))
    return names


def test_every_setting_is_in_the_readme_table_and_nothing_else() -> None:
    documented = readme_settings()
    assert sorted(set(NAMES) - documented) == []  # settings the README does not list
    assert sorted(documented - set(NAMES)) == []  # README rows no setting reads
