"""Child processes of a benchmark: each in a session of its own, output to a log file, all stopped together.

A session of its own keeps a terminal's Ctrl-C away from them: the bench gets it and stops them in
order (newest first, SIGTERM to the whole group so gunicorn's and RQ's forks go too, SIGKILL after a
grace period). Output goes to files, not pipes: a busy access log must not cost the bench's own CPU.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from devstack.environment import REPO_ROOT

STOP_GRACE = 8.0


class ChildDied(RuntimeError):
    """A process the benchmark needs exited early; the message holds the end of its log."""


class Proc:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.name = name
        self.log_path = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("wb")
        try:
            self.popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.popen.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def running(self) -> bool:
        # poll() first: a zombie leader would keep its group looking alive.
        return self.returncode is None or self.group_alive()

    def tail(self, lines: int = 15) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8192))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close_log(self) -> None:
        self._log.close()


class Procs:
    """The processes of one benchmark; a context manager that always stops them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Proc] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path = REPO_ROOT) -> Proc:
        proc = Proc(name, argv, env, cwd, self.log_dir / f"{name}.log")
        self.children.append(proc)
        return proc

    def run(self, name: str, argv: Sequence[str], env: Mapping[str, str], timeout: float = 120.0) -> None:
        """A one-off process (migrations) to the end; raises ChildDied when it fails."""
        proc = self.start(name, argv, env)
        try:
            code = proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            raise ChildDied(f"{name} did not finish in {timeout:.0f} s:\n{proc.tail()}") from None
        self.children.remove(proc)
        proc.close_log()
        if code != 0:
            raise ChildDied(f"{name} exited with code {code}:\n{proc.tail()}")

    def check(self, procs: Sequence[Proc] | None = None) -> None:
        """Raise ChildDied when one of the (given, else all) long-running children has exited."""
        for proc in self.children if procs is None else procs:
            if proc.returncode is not None:
                raise ChildDied(f"{proc.name} exited with code {proc.returncode}:\n{proc.tail()}")

    def stop(self, *procs: Proc, grace: float = STOP_GRACE) -> None:
        """SIGTERM the groups, newest first; SIGKILL whatever is left after the grace period."""
        chosen = list(procs) if procs else list(self.children)
        for proc in reversed(chosen):
            proc.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(proc.running() for proc in chosen) and time.monotonic() < deadline:
            time.sleep(0.05)
        for proc in chosen:
            if proc.running():
                proc.signal_group(signal.SIGKILL)
        for proc in chosen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
            proc.close_log()
            if proc in self.children:
                self.children.remove(proc)

    def __enter__(self) -> Procs:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def wait_until(
    done: Callable[[], bool],
    timeout: float,
    what: str,
    procs: Procs | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `done` until it is true; TimeoutError past `timeout`, ChildDied when a child exits meanwhile."""
    deadline = time.monotonic() + timeout
    while not done():
        if procs is not None:
            procs.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
