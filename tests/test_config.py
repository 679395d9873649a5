"""Settings: every bad value stops the process at start, naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kyc.config import ConfigError, load_settings
from kyc.signing import generate_secret

BASE = {"BLOCKPASS_CLIENT_ID": "acme", "BLOCKPASS_API_KEY": "key"}


def test_defaults_need_only_the_blockpass_credentials() -> None:
    settings = load_settings(BASE)
    assert settings.blockpass_api_url == "https://kyc.blockpass.org/kyc/1.0/connect"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.delivery_retry_schedule == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    assert sum(settings.delivery_retry_schedule) >= 24 * 3600
    assert settings.allow_private_destinations is False


def test_api_key_is_not_in_the_settings_repr() -> None:
    assert "s3cr3t-value" not in repr(load_settings({**BASE, "BLOCKPASS_API_KEY": "s3cr3t-value"}))


def test_heroku_postgres_urls_get_a_driver() -> None:
    settings = load_settings({**BASE, "DATABASE_URL": "postgres://u:p@db.example:5432/app"})
    assert settings.database_url == "postgresql+psycopg://u:p@db.example:5432/app"


def test_schedules_and_origins_parse() -> None:
    settings = load_settings(
        {**BASE, "SYNC_POLL_SCHEDULE": "1, 2,3", "CORS_ORIGINS": "https://a.example, http://localhost:3000"}
    )
    assert settings.sync_poll_schedule == (1.0, 2.0, 3.0)
    assert settings.cors_origins == ("https://a.example", "http://localhost:3000")


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"BLOCKPASS_CLIENT_ID": ""}, "BLOCKPASS_CLIENT_ID"),
        ({"BLOCKPASS_API_KEY": "  "}, "BLOCKPASS_API_KEY"),
        ({"BLOCKPASS_API_URL": "ftp://x"}, "BLOCKPASS_API_URL"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"NOTIFY_URL": "https://hooks.example/kyc"}, "NOTIFY_SECRET"),
        ({"NOTIFY_SECRET": generate_secret()}, "NOTIFY_URL"),
        ({"NOTIFY_URL": "https://h.example", "NOTIFY_SECRET": "plain"}, "NOTIFY_SECRET"),
        ({"NOTIFY_URL": "https://h.example", "NOTIFY_SECRET": "whsec_!!!"}, "NOTIFY_SECRET"),
        ({"NOTIFY_URL": "https://h.example", "NOTIFY_SECRET": "whsec_c2hvcnQ="}, "NOTIFY_SECRET"),
        ({"NOTIFY_URL": "not a url", "NOTIFY_SECRET": generate_secret()}, "NOTIFY_URL"),
        ({"SYNC_POLL_SCHEDULE": "30,soon"}, "SYNC_POLL_SCHEDULE"),
        ({"DELIVERY_RETRY_SCHEDULE": "5,-1"}, "DELIVERY_RETRY_SCHEDULE"),
        ({"DELIVERY_RETRY_SCHEDULE": "nan"}, "DELIVERY_RETRY_SCHEDULE"),
        ({"ALLOW_PRIVATE_DESTINATIONS": "maybe"}, "ALLOW_PRIVATE_DESTINATIONS"),
        ({"CORS_ORIGINS": "shop.example"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "https://shop.example/path"}, "CORS_ORIGINS"),
        ({"PORT": "eighty"}, "PORT"),
        ({"SENTRY_TRACES_SAMPLE_RATE": "2"}, "SENTRY_TRACES_SAMPLE_RATE"),
        ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"),
    ],
)
def test_bad_values_name_their_variable(changes: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**BASE, **changes})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(variable)


@pytest.mark.parametrize("module", ["worker", "kyc.migrate"])
def test_processes_refuse_to_start_on_bad_config(module: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "BLOCKPASS_CLIENT_ID": "acme"}
    done = subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "BLOCKPASS_API_KEY" in done.stderr


def test_web_refuses_to_start_on_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from service import create_app

    monkeypatch.delenv("BLOCKPASS_CLIENT_ID", raising=False)
    with pytest.raises(ConfigError, match="BLOCKPASS_CLIENT_ID"):
        create_app()
