"""The Procfile, run the way a platform runs it: `release` to the end first, then `web` and `worker`.

honcho reads the commands from the Procfile itself, so what is tested is what a deployment runs,
against a Valkey of the tests' own and a fresh SQLite file that only the release step migrates.
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
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from sqlalchemy import create_engine, inspect

from devstack.testing import LoggedProcess, group_members, kill_groups

pytest.importorskip("honcho")

REPO = Path(__file__).resolve().parent.parent
PROCFILE = REPO / "Procfile"
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
    "WEB_",
)
RELEASE_TIMEOUT = 120.0
READY = 60.0
DELIVERED = 60.0
STOP = 30.0  # honcho sends SIGTERM, then SIGKILL after 5 s: this bounds the whole stop
POLL = 0.1


def procfile() -> dict[str, str]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def honcho(*args: str) -> list[str]:
    # The same interpreter as the tests, so honcho is the one from this environment.
    return [sys.executable, "-m", "honcho", "--procfile", str(PROCFILE), "--app-root", str(REPO), *args]


def _free_port() -> int:
    # The web process binds 0.0.0.0:$PORT (as the Procfile says): the port must be free on every address.
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))  # noqa: S104 - probed and closed, never served on
        return int(probe.getsockname()[1])


def until(condition: Callable[[], bool], what: str, timeout: float, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}\n{logs()[-6000:]}")
        time.sleep(POLL)


class Honcho(LoggedProcess):
    """`honcho start` in a session of its own; each process it starts has a session of its own too."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        super().__init__(argv, env, log_path, REPO)

    def children(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"started \(pid=(\d+)\)", self.output())]

    def stop(self) -> bool:
        """SIGTERM, as a platform stops a dyno; honcho passes it to every process group it started.

        True when everything exited by itself within STOP; whatever is left then is killed.
        honcho runs each command through `sh -c` and waits for that shell only, so the processes
        themselves (gunicorn, the worker) are waited for here, group by group.
        """
        groups = [self.process.pid, *self.children()]
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP
        try:
            self.process.wait(STOP)
            while any(group_members(pgid) for pgid in groups):
                if time.monotonic() > deadline:
                    return False
                time.sleep(POLL)
            return True
        except subprocess.TimeoutExpired:
            return False
        finally:
            if any(group_members(pgid) for pgid in groups):
                kill_groups(groups)
                self.process.wait(10)
            self.close_log()


def relay_environment(
    redis_url: str, database_url: str, sandbox: Any, receiver: Any, port: int, home: Path
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(CLEARED_PREFIXES)}
    env.update(
        {
            "BLOCKPASS_CLIENT_ID": sandbox.bp.client_id,
            "BLOCKPASS_API_KEY": sandbox.bp.api_key,
            "BLOCKPASS_API_URL": f"{sandbox.url}/kyc/1.0/connect",
            "BLOCKPASS_RATE_LIMIT": "0",
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "NOTIFY_URL": receiver.url,
            "NOTIFY_SECRET": receiver.secret,
            "ALLOW_PRIVATE_DESTINATIONS": "true",
            "SYNC_POLL_SCHEDULE": "1",
            "SYNC_POLL_HORIZON": "60",
            "DELIVERY_RETRY_SCHEDULE": "1,1,1",
            "DELIVERY_TIMEOUT": "2",
            "MAINTENANCE_INTERVAL": "0.5",
            "SWEEP_INTERVAL": "0",
            "JOB_RETRY_SCHEDULE": "1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            # The Procfile says `python` and `gunicorn`: this environment's, as on the platform's PATH.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            # gunicorn keeps a control socket under ~: not the developer's, which a running stack may use.
            "HOME": str(home),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1,localhost,::1"]))
    return env


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    yield session
    session.close()


def test_procfile_declares_release_web_and_worker() -> None:
    assert set(procfile()) == {"release", "web", "worker"}
    checked = subprocess.run(honcho("check"), capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_procfile_release_then_web_and_worker_deliver_a_callback(
    redis: Redis, redis_url: str, sandbox: Any, receiver: Any, http: requests.Session, tmp_path: Path
) -> None:
    port = _free_port()
    database = tmp_path / "relay.db"
    home = tmp_path / "home"
    home.mkdir()
    no_env_file = tmp_path / "empty.env"  # not the repository's .env, which a developer may keep
    no_env_file.write_text("")
    env = relay_environment(redis_url, f"sqlite:///{database}", sandbox, receiver, port, home)

    # 1. release, to its end, before anything else: it creates the schema.
    release = subprocess.run(
        honcho("--env", str(no_env_file), "start", "release"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RELEASE_TIMEOUT,
    )
    assert release.returncode == 0, release.stdout + release.stderr
    engine = create_engine(f"sqlite:///{database}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "candidates", "events", "deliveries"} <= tables

    # 2. web and worker, together, as the platform's formation runs them.
    stack = Honcho(
        honcho("--env", str(no_env_file), "--no-colour", "start", "web", "worker"),
        env,
        tmp_path / "honcho.log",
    )
    web = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            assert stack.process.poll() is None, f"honcho exited early:\n{stack.output()[-6000:]}"
            try:
                return http.get(f"{web}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        until(answers, "the web process to answer", READY, stack.output)

        # 3. a candidate from callback to delivered notification, then a transition after it.
        sandbox.bp.create(refId="procfile-1", status="waiting")
        accepted = http.post(f"{web}/v1/callbacks", json={"refId": "procfile-1"}, timeout=5)
        assert accepted.status_code == 202, accepted.text
        until(lambda: "candidate.waiting" in receiver.types(), "candidate.waiting", DELIVERED, stack.output)
        sandbox.bp.move("procfile-1", "approved")
        http.post(f"{web}/v1/callbacks", json={"refId": "procfile-1"}, timeout=5)
        until(lambda: "candidate.approved" in receiver.types(), "candidate.approved", DELIVERED, stack.output)
        assert receiver.types() == ["candidate.waiting", "candidate.approved"]
        assert receiver.rejected == 0
        names = set(re.findall(r"^\S+ (\S+)\s*\| ", stack.output(), re.MULTILINE))
        assert {"web.1", "worker.1"} <= names, stack.output()[-3000:]
    finally:
        stopped = stack.stop()

    # 4. a platform's stop (SIGTERM) ends every process by itself, and nothing is left behind.
    assert stopped, f"processes were still running {STOP:.0f} s after SIGTERM:\n{stack.output()[-6000:]}"
