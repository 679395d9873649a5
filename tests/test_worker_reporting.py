"""Jobs abandoned by a dead worker reach Sentry by name, never with their arguments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from rq import Queue
from rq.exceptions import AbandonedJobError
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from worker.reporting import report_abandoned


class Capture(Transport):
    envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        Capture.envelopes.append(envelope)


@pytest.fixture
def capture() -> Iterator[type[Capture]]:
    Capture.envelopes = []
    sentry_sdk.init(dsn="https://key@sentry.invalid/1", transport=Capture)
    # Breadcrumbs of earlier tests in this process would otherwise ride along.
    sentry_sdk.get_isolation_scope().clear_breadcrumbs()
    sentry_sdk.get_current_scope().clear_breadcrumbs()
    yield Capture
    sentry_sdk.init()


def test_an_abandoned_job_is_reported_without_its_arguments(redis: Any, capture: Any) -> None:
    job = Queue("kyc", connection=redis).enqueue(
        "worker.jobs.sync_candidate", ref_id="ref-7f3a9c", cause="cause-51d2e8"
    )
    report_abandoned(job, AbandonedJobError, AbandonedJobError(), None)
    sentry_sdk.flush()
    text = "\n".join(item.payload.get_bytes().decode() for env in capture.envelopes for item in env.items)
    assert "abandoned by a dead worker: worker.jobs.sync_candidate" in text
    assert "ref-7f3a9c" not in text and "cause-51d2e8" not in text


def test_other_failures_are_left_to_the_rq_integration(redis: Any, capture: Any) -> None:
    job = Queue("kyc", connection=redis).enqueue("worker.jobs.maintain")
    assert report_abandoned(job, ValueError, ValueError("x"), None) is True
    sentry_sdk.flush()
    assert capture.envelopes == [] or all(
        "abandoned" not in item.payload.get_bytes().decode()
        for env in capture.envelopes
        for item in env.items
    )
