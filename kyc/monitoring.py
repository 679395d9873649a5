"""Sentry, set up the same way in the web and worker processes, without identity data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import sentry_sdk
from sentry_sdk.integrations import Integration

from kyc.config import Settings
from kyc.scrub import scrub

# Parts of a Sentry event that may hold request or job data.
_SCRUBBED_PARTS = ("request", "extra", "contexts", "tags", "user", "breadcrumbs")


def init_sentry(settings: Settings, integrations: Sequence[Integration], **options: Any) -> bool:
    """Initialise Sentry when SENTRY_DSN is set; do nothing otherwise."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment or os.environ.get("HEROKU_APP_NAME") or "production",
        release=settings.sentry_release
        or os.environ.get("HEROKU_SLUG_COMMIT")
        or os.environ.get("SOURCE_VERSION"),
        integrations=list(integrations),
        # Collect nothing about people: no user info, no bodies, no job
        # arguments, no query data, no local variables in stack frames.
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "queues": False,
            "database_query_data": False,
            "stack_frame_variables": False,
        },
        max_request_body_size="never",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        **options,
    )
    return True


def before_send(event: Any, _hint: dict[str, Any]) -> Any:
    for part in _SCRUBBED_PARTS:
        if part in event:
            event[part] = scrub(event[part])
    request = event.get("request")
    if isinstance(request, dict):
        # Bodies and query strings may hold what a browser or Blockpass sent.
        request.pop("data", None)
        request.pop("query_string", None)
        request.pop("cookies", None)
    job = (event.get("extra") or {}).get("rq-job")
    if isinstance(job, dict):
        # RQ's description spells out the call with its arguments.
        job.pop("description", None)
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return event


def before_breadcrumb(crumb: Any, _hint: dict[str, Any]) -> Any:
    return scrub(crumb)
