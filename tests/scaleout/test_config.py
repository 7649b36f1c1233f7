"""Settings for scale-out: driver choice, pool options from the environment, Redis client options."""

from __future__ import annotations

import pytest

from conference.config import cooperative_database_url, redis_options
from conference.settings import settings_from_environment


def test_engine_options_come_from_json_in_the_environment() -> None:
    settings = settings_from_environment({"CONFERENCE_SQLALCHEMY_ENGINE_OPTIONS": '{"pool_size": 3}',
                                          "CONFERENCE_MAIL_PORT": "2525", "OTHER": "x"})
    assert settings == {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 3}, "MAIL_PORT": 2525}


def test_engine_options_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        settings_from_environment({"CONFERENCE_SQLALCHEMY_ENGINE_OPTIONS": "[1, 2]"})


@pytest.mark.parametrize(("url", "mode", "expected"), [
    ("postgresql+psycopg://u@h/d", "eventlet", "postgresql+psycopg2://u@h/d"),
    ("postgresql+psycopg://u@h/d", "gevent", "postgresql+psycopg://u@h/d"),
    ("postgresql://u@h/d", "gevent", "postgresql+psycopg2://u@h/d"),
    ("sqlite:///x.db", "eventlet", "sqlite:///x.db"),
])
def test_cooperative_driver(url: str, mode: str, expected: str) -> None:
    assert cooperative_database_url(url, mode) == expected


def test_redis_clients_fail_fast_without_hidden_retries() -> None:
    options = redis_options()
    assert options["socket_timeout"] == 1.0 and options["socket_connect_timeout"] == 1.0
    assert options["retry"].get_retries() == 0
