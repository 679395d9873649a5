"""The operator-facing admin API under /v1/, behind ADMIN_TOKEN.

Without ADMIN_TOKEN the routes are not registered at all: they answer 404 like
any unknown path, so an unconfigured deployment exposes nothing to guess at.
"""

from __future__ import annotations

from flask import Flask

from kyc.config import Settings
from service.admin import records, subscribers
from service.admin.base import admin

__all__ = ["records", "register_admin", "subscribers"]


def register_admin(app: Flask, settings: Settings) -> None:
    if settings.admin_token:
        app.register_blueprint(admin)
