"""Settings, read once from the environment and checked before anything starts.

Every variable is listed in README.md. A bad value stops the process at start with a
message naming the variable, rather than failing later on the first request or job.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_BLOCKPASS_API_URL = "https://kyc.blockpass.org/kyc/1.0/connect"
DEFAULT_DATABASE_URL = "sqlite:///kyc-relay.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Follow-up syncs while a candidate is in flight: soon after the callback, then
# backing off to hourly. The last delay repeats until SYNC_POLL_HORIZON.
DEFAULT_SYNC_POLL_SCHEDULE = (30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
DEFAULT_SYNC_POLL_HORIZON = 14 * 24 * 3600.0
# A candidate unknown to Blockpass may simply not be created yet: retry on this
# schedule (about two hours in all), then leave it to the next signal.
DEFAULT_SYNC_NOT_FOUND_SCHEDULE = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# Svix's schedule: the first attempt is immediate, these are the waits after each
# failure (about 27 hours in all).
DEFAULT_DELIVERY_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
DEFAULT_JOB_RETRY_SCHEDULE = (10.0, 60.0, 300.0)
# Blockpass publishes no rate limit; its own paging script makes one or two calls a second.
DEFAULT_BLOCKPASS_RATE_LIMIT = 5.0
DEFAULT_SWEEP_INTERVAL = 600.0
# With the sweep on, polling is only the fallback for what the sweep cannot see
# (incomplete candidates are not listed) or a lost sweep: far fewer calls.
DEFAULT_SYNC_POLL_SCHEDULE_WITH_SWEEP = (60.0, 600.0, 3600.0, 6 * 3600.0)
# With Blockpass's webhooks as well, a poll is only the net under a lost webhook
# and a missed sweep: hours apart.
DEFAULT_SYNC_POLL_SCHEDULE_WITH_WEBHOOKS = (3600.0, 6 * 3600.0, 24 * 3600.0)


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    blockpass_client_id: str
    blockpass_api_key: str = field(repr=False)
    blockpass_api_url: str = DEFAULT_BLOCKPASS_API_URL
    redis_url: str = DEFAULT_REDIS_URL
    database_url: str = DEFAULT_DATABASE_URL
    sentry_dsn: str | None = field(default=None, repr=False)
    sentry_environment: str | None = None
    sentry_release: str | None = None
    sentry_traces_sample_rate: float | None = None
    cors_origins: tuple[str, ...] = ()
    notify_url: str | None = None
    notify_secret: str | None = field(default=None, repr=False)
    sync_poll_schedule: tuple[float, ...] = DEFAULT_SYNC_POLL_SCHEDULE
    sync_poll_horizon: float = DEFAULT_SYNC_POLL_HORIZON
    sync_not_found_schedule: tuple[float, ...] = DEFAULT_SYNC_NOT_FOUND_SCHEDULE
    delivery_retry_schedule: tuple[float, ...] = DEFAULT_DELIVERY_RETRY_SCHEDULE
    delivery_timeout: float = 15.0
    allow_private_destinations: bool = False
    maintenance_interval: float = 10.0
    blockpass_webhook_secret: str | None = field(default=None, repr=False)
    blockpass_rate_limit: float = DEFAULT_BLOCKPASS_RATE_LIMIT
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
    # A claimed sync not finished by then (its worker died) is claimed again.
    sync_lease: float = 60.0
    admin_token: str | None = field(default=None, repr=False)
    # A subscriber failing every attempt for this long is disabled (Svix: 5 days).
    delivery_disable_after: float = 5 * 24 * 3600.0
    # RQ re-runs a job that raised, or whose worker died, after these waits.
    job_retry_schedule: tuple[float, ...] = DEFAULT_JOB_RETRY_SCHEDULE
    port: int = 8000


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from environment variables, raising ConfigError on the first bad one."""
    env = os.environ if env is None else env
    reader = _Reader(env)
    notify_url = reader.url("NOTIFY_URL")
    notify_secret = reader.secret("NOTIFY_SECRET")
    if notify_url and not notify_secret:
        raise ConfigError("NOTIFY_SECRET", "required when NOTIFY_URL is set (a whsec_... secret)")
    if notify_secret and not notify_url:
        raise ConfigError("NOTIFY_URL", "required when NOTIFY_SECRET is set")
    sweep_interval = reader.number("SWEEP_INTERVAL", DEFAULT_SWEEP_INTERVAL)
    return Settings(
        blockpass_client_id=reader.required("BLOCKPASS_CLIENT_ID"),
        blockpass_api_key=reader.required("BLOCKPASS_API_KEY"),
        blockpass_api_url=reader.url("BLOCKPASS_API_URL") or DEFAULT_BLOCKPASS_API_URL,
        redis_url=reader.redis_url("REDIS_URL"),
        database_url=reader.database_url("DATABASE_URL"),
        sentry_dsn=reader.text("SENTRY_DSN"),
        sentry_environment=reader.text("SENTRY_ENVIRONMENT"),
        sentry_release=reader.text("SENTRY_RELEASE"),
        sentry_traces_sample_rate=reader.fraction("SENTRY_TRACES_SAMPLE_RATE"),
        cors_origins=reader.origins("CORS_ORIGINS"),
        notify_url=notify_url,
        notify_secret=notify_secret,
        sync_poll_schedule=reader.schedule("SYNC_POLL_SCHEDULE", _poll_default(reader, sweep_interval)),
        sync_poll_horizon=reader.number("SYNC_POLL_HORIZON", DEFAULT_SYNC_POLL_HORIZON),
        sync_not_found_schedule=reader.schedule("SYNC_NOT_FOUND_SCHEDULE", DEFAULT_SYNC_NOT_FOUND_SCHEDULE),
        delivery_retry_schedule=reader.schedule("DELIVERY_RETRY_SCHEDULE", DEFAULT_DELIVERY_RETRY_SCHEDULE),
        delivery_timeout=reader.number("DELIVERY_TIMEOUT", 15.0),
        allow_private_destinations=reader.flag("ALLOW_PRIVATE_DESTINATIONS"),
        maintenance_interval=reader.number("MAINTENANCE_INTERVAL", 10.0),
        blockpass_webhook_secret=reader.text("BLOCKPASS_WEBHOOK_SECRET"),
        blockpass_rate_limit=reader.number("BLOCKPASS_RATE_LIMIT", DEFAULT_BLOCKPASS_RATE_LIMIT),
        sweep_interval=sweep_interval,
        job_retry_schedule=reader.schedule("JOB_RETRY_SCHEDULE", DEFAULT_JOB_RETRY_SCHEDULE),
        admin_token=reader.token("ADMIN_TOKEN"),
        sync_lease=reader.number("SYNC_LEASE", 60.0),
        delivery_disable_after=reader.number("DELIVERY_DISABLE_AFTER", 5 * 24 * 3600.0),
        port=int(reader.number("PORT", 8000)),
    )


def _poll_default(reader: _Reader, sweep_interval: float) -> tuple[float, ...]:
    if reader.text("BLOCKPASS_WEBHOOK_SECRET") and sweep_interval > 0:
        return DEFAULT_SYNC_POLL_SCHEDULE_WITH_WEBHOOKS
    return DEFAULT_SYNC_POLL_SCHEDULE_WITH_SWEEP if sweep_interval > 0 else DEFAULT_SYNC_POLL_SCHEDULE


def normalise_database_url(url: str) -> str:
    # Heroku-style platforms hand out postgres://; SQLAlchemy wants a driver name.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(name, "is required")
        return value

    def url(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(name, "must be an http:// or https:// URL")
        return value.rstrip("/")

    def redis_url(self, name: str) -> str:
        value = self.text(name) or DEFAULT_REDIS_URL
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(name, "must be a redis://, rediss:// or unix:// URL")
        return value

    def database_url(self, name: str) -> str:
        value = normalise_database_url(self.text(name) or DEFAULT_DATABASE_URL)
        if not value.startswith(("sqlite:", "postgresql")):
            raise ConfigError(name, "must be a sqlite:/// or postgres:// URL")
        return value

    def secret(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.startswith("whsec_"):
            raise ConfigError(name, "must be a Standard Webhooks secret starting with whsec_")
        try:
            raw = base64.b64decode(value[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(name, "is not valid base64 after whsec_") from None
        if not 24 <= len(raw) <= 64:
            raise ConfigError(name, "must hold 24 to 64 random bytes")
        return value

    def token(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and len(value) < 32:
            raise ConfigError(name, "must be at least 32 characters (e.g. openssl rand -hex 32)")
        return value

    def origins(self, name: str) -> tuple[str, ...]:
        value = self.text(name)
        if value is None:
            return ()
        origins = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.hostname or parts.path):
                raise ConfigError(name, f"{origin!r} is not an origin like https://app.example.com or *")
        return origins

    def schedule(self, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = self.text(name)
        if value is None:
            return default
        try:
            delays = tuple(float(part) for part in value.split(","))
        except ValueError:
            raise ConfigError(name, "must be comma-separated seconds, e.g. 30,60,300") from None
        if any(delay < 0 or delay != delay for delay in delays):
            raise ConfigError(name, "delays must be zero or more seconds")
        return delays

    def number(self, name: str, default: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, "must be a number") from None
        if number < 0 or number != number:
            raise ConfigError(name, "must be zero or more")
        return number

    def fraction(self, name: str) -> float | None:
        if self.text(name) is None:
            return None
        value = self.number(name, 0.0)
        if value > 1:
            raise ConfigError(name, "must be between 0 and 1")
        return value

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "false").lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, "must be true or false")
