"""Child processes with prefixed, line-by-line output, started and stopped together (a small honcho)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

# Distinct, readable on dark and light terminals: cyan, magenta, yellow, green, blue, red.
_COLOURS = ("36", "35", "33", "32", "34", "31")
# gunicorn and RQ finish in-flight work on SIGTERM; this is how long they get before SIGKILL.
STOP_GRACE = 10.0


class Output:
    """Writes `name | line` for every process, one whole line at a time."""

    def __init__(self, stream: IO[str], on_broken: Callable[[], None], width: int = 10) -> None:
        self.stream = stream
        self.on_broken = on_broken
        self.width = width
        self.colour = stream.isatty() and "NO_COLOR" not in os.environ
        self.lock = threading.Lock()
        self.broken = False
        self._colours: dict[str, str] = {}

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            code = self._colours.setdefault(name, _COLOURS[len(self._colours) % len(_COLOURS)])
            prefix = f"\033[{code}m{prefix}\033[0m"
        with self.lock:
            if self.broken:
                return
            try:
                self.stream.write(f"{prefix} {text}\n")
                self.stream.flush()
            except OSError:
                # The reader went away (`| head`, a closed terminal): nobody can watch the stack any
                # more, and a failed write must not abort the shutdown that stops the children.
                self.broken = True
                self.on_broken()

    def lines(self, name: str, text: str) -> None:
        for part in text.splitlines() or [""]:
            self.line(name, part)


class Child:
    """One process in a session of its own, so a terminal's Ctrl-C reaches only devstack, which then
    stops the children in order; signals go to the whole group, reaching gunicorn's and RQ's forks."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, output: Output
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(  # noqa: S603 - argv is built by devstack, not from input
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = threading.Thread(target=self._copy, args=(output,), name=f"output-{name}", daemon=True)
        self._pump.start()

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def signal_group(self, signum: int) -> None:
        # The group outlives its leader while forks (gunicorn workers, RQ's work horse) remain.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def running(self) -> bool:
        # Reap the leader first (poll): a zombie leader would keep its group looking alive.
        return self.returncode is None or self.group_alive()

    def join_output(self, timeout: float = 2.0) -> None:
        self._pump.join(timeout)

    def _copy(self, output: Output) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for raw in iter(self.process.stdout.readline, b""):
                output.line(self.name, raw.decode("utf-8", "replace").rstrip("\r\n"))


class Supervisor:
    def __init__(self, env: Mapping[str, str], cwd: Path, output: Output) -> None:
        self.env = env
        self.cwd = cwd
        self.output = output
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str]) -> Child:
        child = Child(name, argv, self.env, self.cwd, self.output)
        self.children.append(child)
        return child

    def run(self, name: str, argv: Sequence[str], stop: threading.Event) -> int | None:
        """Run a one-off process to the end; None when a stop was asked for first."""
        child = self.start(name, argv)
        while (code := child.returncode) is None:
            if stop.wait(0.1):
                return None
        child.join_output()
        self.children.remove(child)
        return code

    def exited(self) -> Child | None:
        """The first long-running child that has exited, if any."""
        return next((child for child in self.children if child.returncode is not None), None)

    def stop(self, hurry: threading.Event, grace: float = STOP_GRACE) -> None:
        """SIGTERM every child, newest first (web and worker before what they call); SIGKILL what is
        left after the grace period, or at once when hurry is set (a second Ctrl-C)."""
        for child in reversed(self.children):
            if child.returncode is None:
                self.output.line("devstack", f"stopping {child.name} (pid {child.process.pid})")
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(child.running() for child in self.children):
            if time.monotonic() > deadline or hurry.is_set():
                break
            time.sleep(0.1)
        for child in self.children:
            if child.running():
                self.output.line("devstack", f"{child.name} is still running: killing it")
                child.signal_group(signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(5)
            child.join_output()


def python(*args: str) -> list[str]:
    """argv for this interpreter, so children use the same venv whatever PATH says."""
    return [sys.executable, *args]
