"""The RQ worker class kyc-relay runs."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from typing import Any

from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker, WorkerStatus

log = logging.getLogger("kyc.worker")

# Seconds between heartbeats of a running job when none is given (MAINTENANCE_INTERVAL's default).
DEFAULT_HEARTBEAT = 10.0
MAX_HEARTBEAT = 30.0


class RelayWorker(SimpleWorker):
    """Runs jobs in the worker process itself instead of forking one child per job.

    Jobs are short (bounded by HTTP timeouts) and share connection pools, which
    a fork per job would throw away. SIGTERM lets the running job finish, then
    exits (RQ's warm shutdown).

    A job cut off by SIGKILL stays "started" in RQ's StartedJobRegistry until its
    execution's heartbeat runs out; RQ's registry cleanup then retries it (the job's
    Retry, JOB_RETRY_SCHEDULE). RQ's SimpleWorker sends no heartbeat while a job
    runs, so it gives every execution the job timeout plus a minute (three minutes
    here), cleans registries every ten minutes, and only between two waits for a
    job, which last up to 405 s on an idle worker. This worker sends a heartbeat
    every `heartbeat` seconds from a thread while a job runs, so an execution is
    given up `beat_ttl` seconds after its worker died, and cleans registries (and
    restarts a scheduler that died with Redis, or could not take its lock from a
    killed worker's scheduler) every `beat_ttl` seconds, busy or idle.
    """

    def __init__(
        self,
        *args: Any,
        heartbeat: float = DEFAULT_HEARTBEAT,
        stopping: threading.Event | None = None,
        **kwargs: Any,
    ) -> None:
        self.beat_interval = min(max(heartbeat, 1.0), MAX_HEARTBEAT)
        # Three missed beats, and a margin for a slow Redis, before a job counts as abandoned.
        self.beat_ttl = math.ceil(3 * self.beat_interval) + 5
        kwargs.setdefault("maintenance_interval", self.beat_ttl)
        # RQ runs that cleanup only between two waits for a job, and an idle worker waits worker_ttl - 15
        # seconds (405 by default): wait no longer than the cleanup interval.
        kwargs.setdefault("worker_ttl", self.beat_ttl + 15)
        super().__init__(*args, **kwargs)
        # Set by SIGTERM/SIGINT (here or in `python -m worker` between two workers): the stop was asked for.
        self.stopping = stopping if stopping is not None else threading.Event()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.beat_ttl

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        done = threading.Event()
        beats = threading.Thread(
            target=self._beat, args=(job, execution, done), name="job-heartbeat", daemon=True
        )
        beats.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            beats.join()
        self.set_state(WorkerStatus.IDLE)

    def _beat(self, job: Job, execution: Execution, done: threading.Event) -> None:
        while not done.wait(self.beat_interval):
            try:
                self.maintain_heartbeats(job, execution)
            except Exception as exc:  # Redis away: the next beat tries again
                log.warning("job heartbeat failed: %s", type(exc).__name__)

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if self.stopping.is_set():
            # Asked to stop before this worker's handlers were in place: leave at the first turn of the loop.
            self._stop_requested = True

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stopping.set()
        super().request_stop(signum, frame)

    def release(self) -> None:
        """Stop what a worker that left its loop through a Redis error can leave behind: its pubsub
        thread (which retries every two seconds for ever) and its scheduler process."""
        if self.pubsub_thread is not None:
            self.pubsub_thread.stop()
        process = self.scheduler._process if self.scheduler is not None else None
        if process is not None and process.is_alive():
            with contextlib.suppress(Exception):
                self.stop_scheduler()
