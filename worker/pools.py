"""Thread pools inside a worker process: many candidates' I/O at once instead of one blocking call per job."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import sentry_sdk

log = logging.getLogger("kyc.worker")


class WorkPool:
    """A bounded pool: `submit` waits once `threads + backlog` tasks are pending (backpressure)."""

    def __init__(self, name: str, threads: int, backlog: int) -> None:
        self.name = name
        self.threads = threads
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self.slots = threading.BoundedSemaphore(threads + backlog)
        self.capacity = threads + backlog
        self.lock = threading.Condition()
        self.pending = 0

    def submit(self, task: Callable[[], object], what: str) -> None:
        self.slots.acquire()
        with self.lock:
            self.pending += 1
        self.executor.submit(self._run, task, what)

    def free(self) -> int:
        with self.lock:
            return max(0, self.capacity - self.pending)

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: self.pending == 0, timeout)

    def shutdown(self) -> None:
        """Let tasks in flight finish (each is bounded by its HTTP timeouts), then stop."""
        self.executor.shutdown(wait=True)

    def _run(self, task: Callable[[], object], what: str) -> None:
        try:
            task()
        except Exception:
            # The durable record (a lease in the database or the hint inbox) brings the work back.
            log.exception("%s: %s crashed; it will be picked up again", self.name, what)
            sentry_sdk.capture_exception()
        finally:
            with self.lock:
                self.pending -= 1
                self.lock.notify_all()
            self.slots.release()
