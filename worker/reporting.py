"""Reporting what RQ sees fail outside our code: jobs abandoned by a worker that died."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import sentry_sdk
from rq.exceptions import AbandonedJobError

log = logging.getLogger("kyc.worker")


def report_abandoned(
    job: Any, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> bool:
    """RQ exception handler: a job whose worker died mid-run goes to Sentry (by name, never arguments)."""
    if isinstance(exc, AbandonedJobError):
        retrying = bool(job.retries_left)
        log.warning("job %s (%s) abandoned by a dead worker; retried=%s", job.id, job.func_name, retrying)
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("rq.job", job.func_name)
            scope.set_extra("job_id", job.id)
            scope.set_extra("retried", retrying)
            sentry_sdk.capture_message(f"RQ job abandoned by a dead worker: {job.func_name}", level="error")
    return True
