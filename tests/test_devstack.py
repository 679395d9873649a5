"""`python -m devstack --check`: the local stack comes up, runs the walkthrough end to end, and stops."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120
EXPECTED = ("candidate.waiting", "candidate.inreview", "candidate.approved")
# A developer's shell may point the relay at other services; the check must use its own.
CLEARED_PREFIXES = ("REDIS_URL", "DATABASE_URL", "BLOCKPASS_", "NOTIFY_", "SENTRY_", "SANDBOX_", "DEV_")


def _free_ports(count: int) -> list[int]:
    # All held open together, so the kernel cannot hand out the same port twice.
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_check_runs_the_walkthrough_and_stops_cleanly(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith(CLEARED_PREFIXES)}
    env.pop("PORT", None)
    # devstack is run from the repository, not installed: a throwaway cwd needs the path.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    web, sandbox, subscriber, redis = _free_ports(4)
    argv = [sys.executable, "-m", "devstack", "--check", "--web-port", str(web)]
    argv += ["--sandbox-port", str(sandbox), "--subscriber-port", str(subscriber), "--redis-port", str(redis)]

    process = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: devstack then stops its children, which a kill would leave running.
        process.terminate()
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"devstack --check did not finish in {TIMEOUT} s:\n{output[-6000:]}")

    assert process.returncode == 0, output[-6000:]
    for kind in EXPECTED:
        # The demo subscriber's own line, printed once it verified the signature.
        assert re.search(rf"^subscriber\s*\| {re.escape(kind)}  refId=demo-1 ", output, re.MULTILINE), kind
    assert "passed: the subscriber verified" in output
    assert (tmp_path / "var" / "kyc-relay.db").exists()
    # Everything devstack started has let go of its port: nothing is left running.
    for port in (web, sandbox, subscriber, redis):
        assert _port_free(port), f"port {port} still in use after devstack exited"
