"""Handing work to the queue: coalesced syncs and deliveries.

The web process and the jobs both use this; job functions are named by their
import path so the web process never imports the job code.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from worker.hints import Hint, Inbox

QUEUE_NAME = "kyc"
SYNC_JOB = "worker.jobs.sync_candidate"
DELETED_CAUSE = "blockpass:user.deleted"
DELIVER_JOB = "worker.jobs.deliver"
MAINTAIN_JOB = "worker.jobs.maintain"
SWEEP_JOB = "worker.jobs.sweep"
SWEEP_DUE_KEY = "sweep-due"

# A sync never needs more than this; RQ stops it past that.
JOB_TIMEOUT = 120
# Keep failed jobs for inspection, but not for ever.
FAILURE_TTL = 7 * 24 * 3600
# Statuses of an existing job under the same id that mean "already on its way".
_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CREATED}


def queue_depths(connection: Redis) -> dict[str, int]:
    """Jobs by state, and hints waiting or in flight, for /metrics."""
    queue = Queue(QUEUE_NAME, connection=connection)
    return {
        **Inbox(connection).counts(),
        "queued": queue.count,
        "scheduled": ScheduledJobRegistry(queue=queue).count,
        "started": StartedJobRegistry(queue=queue).count,
        "failed": FailedJobRegistry(queue=queue).count,
    }


def sync_key(ref_id: str | None, record_id: str | None) -> str:
    """A job-id-safe key for one candidate (refIds may hold characters RQ ids do not)."""
    name = f"ref:{ref_id}" if ref_id else f"rec:{record_id}"
    return hashlib.blake2b(name.encode(), digest_size=12).hexdigest()


class Dispatcher:
    def __init__(
        self, connection: Redis, job_retry: tuple[float, ...] = (10.0, 60.0, 300.0), sync_lease: float = 60.0
    ) -> None:
        self.connection = connection
        self.inbox = Inbox(connection, sync_lease)
        # An exception, or a worker killed mid-job (RQ's abandoned-job cleanup), runs the job again.
        self.retry = (
            Retry(max=len(job_retry), interval=[int(delay) for delay in job_retry]) if job_retry else None
        )
        self.queue = Queue(QUEUE_NAME, connection=connection)

    def request_sync(
        self,
        ref_id: str | None,
        record_id: str | None,
        *,
        delay: float = 0,
        attempt: int = 0,
        cause: str = "",
    ) -> bool:
        """Ask for a sync of one candidate; False when one is already waiting (the requests coalesce).

        Now: a hint in the inbox, one Redis round trip. Later (a retry): an RQ
        job scheduled for then, which files the hint when its time comes.
        """
        key = sync_key(ref_id, record_id)
        if delay <= 0:
            priority = 1 if cause == DELETED_CAUSE else 0
            return self.inbox.file(Hint(key, ref_id, record_id, cause, attempt), priority)
        kwargs = {"ref_id": ref_id, "record_id": record_id, "attempt": attempt, "cause": cause}
        return self._enqueue_coalesced(f"retry-{key}", SYNC_JOB, kwargs, delay)

    def hand_delivery(self, delivery_id: int, *, delay: float = 0) -> bool:
        return self._enqueue_coalesced(
            f"deliver-{delivery_id}", DELIVER_JOB, {"delivery_id": delivery_id}, delay
        )

    def request_maintenance(self) -> bool:
        return self._enqueue_coalesced("maintain", MAINTAIN_JOB, {}, 0)

    def request_sweep_if_due(self, interval: float) -> bool:
        """At most one sweep per interval across every worker: the first to take the key runs it."""
        if interval <= 0 or not self.first_sight(SWEEP_DUE_KEY, interval):
            return False
        return self._enqueue_coalesced("sweep", SWEEP_JOB, {}, 0)

    def first_sight(self, key: str, seconds: float) -> bool:
        """True the first time `key` is seen within `seconds` (deduplication across processes)."""
        return bool(self.connection.set(f"kyc:seen:{key}", b"1", nx=True, ex=max(1, int(seconds))))

    def forget(self, key: str) -> None:
        self.connection.delete(f"kyc:seen:{key}")

    def _enqueue_coalesced(self, base_id: str, func: str, kwargs: dict[str, Any], delay: float) -> bool:
        for job_id in (base_id, base_id + "-next"):
            for _ in range(2):
                try:
                    self._enqueue(job_id, func, kwargs, delay)
                    return True
                except DuplicateJobError:
                    status = self._status(job_id)
                if status in _WAITING:
                    return False
                if status == JobStatus.STARTED:
                    break  # try the "-next" slot
                # A finished or failed job's leftover hash: clear it and try again.
                self._discard(job_id)
        return False

    def _enqueue(self, job_id: str, func: str, kwargs: dict[str, Any], delay: float) -> None:
        options: dict[str, Any] = {
            "job_id": job_id,
            "unique": True,
            "job_timeout": JOB_TIMEOUT,
            "result_ttl": 0,
            "failure_ttl": FAILURE_TTL,
            "retry": self.retry,
            "kwargs": kwargs,
        }
        if delay > 0:
            # RQ's schedule counts whole seconds and drops the fraction: round up,
            # never down, so nothing runs before its time.
            at = datetime.now(UTC) + timedelta(seconds=delay)
            self.queue.enqueue_at(at.replace(microsecond=0) + timedelta(seconds=1), func, **options)
        else:
            self.queue.enqueue(func, **options)

    def _status(self, job_id: str) -> JobStatus | None:
        try:
            return Job.fetch(job_id, connection=self.connection).get_status(refresh=False)
        except NoSuchJobError:
            return None

    def _discard(self, job_id: str) -> None:
        with contextlib.suppress(NoSuchJobError):
            Job.fetch(job_id, connection=self.connection).delete()
