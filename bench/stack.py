"""Starting kyc-relay the way it runs in production (the Procfile's commands), and what it talks to.

kyc-relay is a black box here: its commands come from the Procfile, its settings from environment
variables, its readiness from HTTP and from RQ's worker registry in its Redis.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import gunicorn
import requests
from redis import Redis
from rq import Worker
from sqlalchemy import create_engine, text

from bench.procs import Proc, Procs, wait_until
from devstack.environment import REPO_ROOT, Ports, free_port, relay_environment
from devstack.localredis import start_valkey
from devstack.processes import python
from sandbox.testing import loopback_session

PROCFILE = REPO_ROOT / "Procfile"
SHARED_REDIS_PORT = 6379
READY_TIMEOUT = 45.0
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# The developer's shell may point kyc-relay elsewhere or tune it: the bench sets every one it needs.
CLEARED = (
    "REDIS_URL",
    "DATABASE_URL",
    "BLOCKPASS_",
    "NOTIFY_",
    "SENTRY_",
    "SANDBOX_",
    "DEV_",
    "SYNC_",
    "SWEEP_",
    "DELIVERY_",
    "JOB_RETRY_",
    "MAINTENANCE_",
    "ALLOW_PRIVATE_",
    "CORS_",
    "ADMIN_TOKEN",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_CMD_ARGS",
)
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


# The Procfile


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    commands: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def expand(command: str, env: Mapping[str, str]) -> str:
    """${NAME:-default} and $NAME, as the shell a platform runs the Procfile with would expand them."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2) or ""
        return env.get(name) or default

    return _VARIABLE.sub(value, command)


def _command(kind: str, env: Mapping[str, str]) -> list[str]:
    argv = shlex.split(expand(procfile()[kind], env))
    # This interpreter's copy of the tool, whatever PATH says.
    if argv[0] in ("python", "python3"):
        return python(*argv[1:])
    return python("-m", argv[0], *argv[1:])


def web_argv(port: int, env: Mapping[str, str], app: str | None = None) -> list[str]:
    """The Procfile's web command, bound to loopback on `port`, optionally serving another app."""
    argv = _command("web", {**env, "PORT": str(port)})
    for index, arg in enumerate(argv):
        if arg in ("--bind", "-b") and index + 1 < len(argv):
            argv[index + 1] = f"127.0.0.1:{port}"
        elif arg.startswith("--bind="):
            argv[index] = f"--bind=127.0.0.1:{port}"
    if gunicorn.version_info >= (25, 1):
        # Its control socket is one path per user: a second gunicorn (the other app, a dev stack) would
        # take it over and delete it on exit. Nothing here uses it.
        argv.insert(-1, "--no-control-socket")
    if app is not None:
        argv[-1] = app
    return argv


def release_argv(env: Mapping[str, str]) -> list[str]:
    return _command("release", env)


def worker_argv(env: Mapping[str, str]) -> list[str]:
    return _command("worker", env)


# Environment


def clean_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith(CLEARED)}


def notify_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def relay_env(
    *,
    web_port: int,
    sandbox_port: int,
    receiver_port: int,
    redis_url: str,
    database_url: str,
    settings: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """devstack's wiring (sandbox credentials, loopback subscriber, PYTHONPATH, NO_PROXY) with the
    bench's own settings on top; a None value removes the variable."""
    ports = Ports(web=web_port, sandbox=sandbox_port, subscriber=receiver_port, redis=0)
    env = relay_environment(clean_environment(), ports, redis_url, notify_secret(), check=True)
    env["DATABASE_URL"] = database_url
    env["WEB_CONCURRENCY"] = "2"
    for name, value in (settings or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


# Redis (throwaway Valkey) and the database


@contextmanager
def valkey(data_dir: Path) -> Iterator[str]:
    """A Valkey of the bench's own on a free loopback port, stopped on the way out."""
    server, _note = start_valkey(free_port(), data_dir)
    try:
        if server.port == SHARED_REDIS_PORT:
            raise RuntimeError("refusing to use port 6379: that is the machine's shared Redis")
        url = f"redis://127.0.0.1:{server.port}/0"
        wait_until(lambda: _pings(url), 15, f"Valkey on {url}")
        yield url
    finally:
        server.stop()


def _pings(url: str) -> bool:
    try:
        with Redis.from_url(url, socket_timeout=2) as connection:
            return bool(connection.ping())
    except Exception:
        return False


@contextmanager
def database(kind: str, data_dir: Path, postgres_url: str = DEFAULT_POSTGRES_URL) -> Iterator[str]:
    """An empty database: a SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if kind == "sqlite":
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / f"kyc-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = f"kyc_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def migrate(procs: Procs, env: Mapping[str, str]) -> None:
    """The Procfile's release step."""
    procs.run("release", release_argv(env), env)


# Processes


def start_sandbox(procs: Procs, env: Mapping[str, str], port: int) -> tuple[Proc, str]:
    proc = procs.start("sandbox", python("-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)), env)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/_sandbox/latency", procs)
    return proc, url


def start_web(
    procs: Procs, env: Mapping[str, str], port: int, name: str = "web", app: str | None = None
) -> tuple[Proc, str]:
    proc = procs.start(name, web_argv(port, env, app), env)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", procs)
    return proc, url


def start_workers(
    procs: Procs, env: Mapping[str, str], count: int, redis_url: str, name: str = "worker"
) -> tuple[list[Proc], bool]:
    """`count` worker processes (the Procfile's command); returns them and whether RQ saw them all.

    The first starts alone and the others once it registered: workers started at the same instant on a
    fresh PostgreSQL database race to create the NOTIFY_URL subscriber, and one of them dies.
    """
    first = procs.start(f"{name}-1", worker_argv(env), env)
    wait_rq_workers(procs, redis_url, 1)
    rest = [procs.start(f"{name}-{i + 1}", worker_argv(env), env) for i in range(1, count)]
    return [first, *rest], wait_rq_workers(procs, redis_url, count)


def wait_rq_workers(procs: Procs, redis_url: str, count: int, timeout: float = READY_TIMEOUT) -> bool:
    """Until `count` RQ workers registered in Redis; False (not an error) when that is never seen,
    since how a worker process shows itself in Redis may change."""
    connection = Redis.from_url(redis_url)
    try:
        wait_until(lambda: Worker.count(connection=connection) >= count, timeout, "RQ workers", procs)
        return True
    except TimeoutError:
        return False
    finally:
        connection.close()


def wait_http(url: str, procs: Procs, timeout: float = READY_TIMEOUT) -> None:
    """Until `url` gives any HTTP answer."""
    session = loopback_session()

    def answers() -> bool:
        try:
            session.get(url, timeout=2)
            return True
        except requests.RequestException:
            return False

    try:
        wait_until(answers, timeout, url, procs, interval=0.1)
    finally:
        session.close()


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open together while chosen)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        ports = [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()
    if SHARED_REDIS_PORT in ports:  # never in the ephemeral range, but never risk it
        time.sleep(0.01)
        return free_ports(count)
    return ports
