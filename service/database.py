"""The web process's database handle, made on first use.

Only the admin API and the operator CLI read the database from the web process;
an app that only accepts callbacks and webhooks never opens a connection.
"""

from __future__ import annotations

import threading

from flask import Flask

from kyc.config import Settings
from kyc.db import Database

_lock = threading.Lock()


def database(app: Flask) -> Database:
    with _lock:
        db: Database | None = app.extensions.get("kyc.db")
        if db is None:
            settings: Settings = app.extensions["kyc.settings"]
            db = app.extensions["kyc.db"] = Database(settings.database_url)
        return db
