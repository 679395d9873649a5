"""The environment the relay's processes get: the developer's, with local defaults filled in."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SANDBOX_CLIENT_ID = "sandbox"
SANDBOX_API_KEY = "sandbox-key"  # the simulator's well-known dev key
VAR_DIR = Path("var")
DATABASE_URL = "sqlite:///var/kyc-relay.db"
HOOK_PATH = "/hook"
# Short enough that a status moved in the sandbox shows up within seconds without a callback.
SYNC_POLL_SCHEDULE = "5,10,30,60"
MAINTENANCE_INTERVAL = "2"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Ports:
    web: int
    sandbox: int
    subscriber: int
    redis: int

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox}"

    @property
    def subscriber_url(self) -> str:
        return f"http://127.0.0.1:{self.subscriber}"


def relay_environment(
    base: Mapping[str, str], ports: Ports, redis_url: str, secret: str, check: bool
) -> dict[str, str]:
    """What every child runs with. The developer's own settings win, except that --check
    needs the sandbox and the demo subscriber wired in, since that is what it drives and watches."""
    env = dict(base)
    client_id = _filled(env, "SANDBOX_CLIENT_ID", SANDBOX_CLIENT_ID)
    api_key = _filled(env, "SANDBOX_API_KEY", SANDBOX_API_KEY)
    wiring = {
        "BLOCKPASS_API_URL": f"{ports.sandbox_url}/kyc/1.0/connect",
        "BLOCKPASS_CLIENT_ID": client_id,
        "BLOCKPASS_API_KEY": api_key,
        "NOTIFY_URL": ports.subscriber_url + HOOK_PATH,
        "NOTIFY_SECRET": secret,
        # The demo subscriber listens on loopback, which the relay refuses by default.
        "ALLOW_PRIVATE_DESTINATIONS": "true",
    }
    for name, value in wiring.items():
        if check:
            env[name] = value
        else:
            _filled(env, name, value)
    _filled(env, "REDIS_URL", redis_url)
    _filled(env, "DATABASE_URL", DATABASE_URL)
    _filled(env, "CORS_ORIGINS", f"http://localhost:{ports.web},http://127.0.0.1:{ports.web}")
    _filled(env, "SYNC_POLL_SCHEDULE", SYNC_POLL_SCHEDULE)
    _filled(env, "MAINTENANCE_INTERVAL", MAINTENANCE_INTERVAL)
    env["PORT"] = str(ports.web)
    # Python children flush each line, so prefixed output interleaves as it happens.
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    # devstack is not an installed package: let `python -m devstack.subscriber` find it from any directory.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # A developer's HTTP proxy must not see (or break) calls between local processes.
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1,localhost,::1"]))
    return env


def notify_secret(base: Mapping[str, str], generate: str) -> str:
    """NOTIFY_SECRET when the developer set one (the subscriber checks with the same), else a fresh one."""
    return base.get("NOTIFY_SECRET", "").strip() or generate


def port_setting(flag: int | None, base: Mapping[str, str], name: str, default: int) -> int:
    """A port from its flag, else its environment variable, else the default."""
    if flag is not None:
        return flag
    value = base.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"devstack: {name} must be a port number, not {value!r}") from None


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:port.

    SO_REUSEADDR, as servers bind, so connections lingering in TIME_WAIT from a previous run do not
    count. The wildcard address is tried too: on macOS a loopback bind succeeds beside a listener on
    0.0.0.0 (Docker's published ports, say), and our server would then never see its connections.
    """
    for address in ("127.0.0.1", "0.0.0.0"):  # noqa: S104 - probed and closed, never served on
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _filled(env: dict[str, str], name: str, value: str) -> str:
    """Set name to value unless it holds something (the relay treats blank as unset too)."""
    if not env.get(name, "").strip():
        env[name] = value
    return env[name]
