"""The web process: a Flask app answering widget callbacks and Blockpass webhooks."""

from __future__ import annotations

import logging

from flask import Flask
from redis import Redis
from sentry_sdk.integrations.flask import FlaskIntegration

from kyc.config import Settings, load_settings
from kyc.metrics import Metrics
from kyc.monitoring import init_sentry
from service.admin import register_admin
from service.api_description import api_description
from service.blockpass_webhooks import MAX_BODY, blockpass_webhooks
from service.callbacks import callbacks
from service.cli import deliveries_cli, subscribers_cli
from service.cors import register_cors
from service.errors import register_error_handlers
from service.operations import operations
from service.request_ids import register_request_ids
from worker.context import redis_options
from worker.dispatch import Dispatcher

log = logging.getLogger("kyc.web")


def create_app(settings: Settings | None = None, redis: Redis | None = None) -> Flask:
    """The app factory: the one place that wires settings, Redis and the blueprints together."""
    settings = settings or load_settings()
    init_sentry(settings, [FlaskIntegration()])
    app = Flask(__name__)
    # Werkzeug answers 413 for larger bodies before any view reads them; each
    # endpoint holds its own, smaller limit.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False  # type: ignore[attr-defined]
    connection = redis if redis is not None else Redis.from_url(settings.redis_url, **redis_options(settings))
    app.extensions["kyc.settings"] = settings
    app.extensions["kyc.redis"] = connection
    app.extensions["kyc.dispatch"] = Dispatcher(connection, settings.job_retry_schedule)
    app.extensions["kyc.metrics"] = Metrics(connection)
    if not settings.blockpass_webhook_secret:
        log.warning("BLOCKPASS_WEBHOOK_SECRET is not set: Blockpass webhooks are accepted unsigned")
    register_error_handlers(app)
    register_request_ids(app)
    register_cors(app, settings.cors_origins)
    app.register_blueprint(operations)
    app.register_blueprint(callbacks)
    app.register_blueprint(blockpass_webhooks)
    app.register_blueprint(api_description)
    register_admin(app, settings)
    app.cli.add_command(subscribers_cli)
    app.cli.add_command(deliveries_cli)
    return app
