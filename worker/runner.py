"""The RQ worker class kyc-relay runs."""

from __future__ import annotations

from rq.worker import SimpleWorker


class RelayWorker(SimpleWorker):
    """Runs jobs in the worker process itself instead of forking one child per job.

    Jobs are short (bounded by HTTP timeouts) and share connection pools, which
    a fork per job would throw away. SIGTERM lets the running job finish, then
    exits (RQ's warm shutdown); a job cut off by SIGKILL is found by RQ's
    abandoned-job cleanup and by the maintenance pass, and runs again.
    """
