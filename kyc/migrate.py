"""Schema migrations (Alembic). `python -m kyc.migrate` is the Procfile's release step."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from kyc.config import ConfigError, load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration (what /readyz checks)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"kyc-relay release: configuration error: {exc}", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    print("kyc-relay: database schema is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
