"""Peak memory of worker processes, read from /proc (psutil when /proc is missing and it is installed).

For each worker: VmHWM of the worker process itself (the kernel's own peak, so nothing is missed
between samples), and the peak of the summed RSS of its whole process tree (an RQ scheduler, a
work horse per job), sampled every `interval` seconds.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _status_kb(pid: int, field: str) -> int | None:
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process, from /proc/<pid>/stat."""
    parents: dict[int, int] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    return parents


def _tree(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class _Psutil:
    def __init__(self) -> None:
        import psutil

        self.psutil = psutil

    def own_peak_kb(self, pid: int) -> int | None:
        try:
            info = self.psutil.Process(pid).memory_info()
        except self.psutil.Error:
            return None
        # No high-water mark outside Linux: the current RSS, maximised over samples by the caller.
        return int(info.rss) // 1024

    def tree_kb(self, pid: int) -> int:
        try:
            process = self.psutil.Process(pid)
            members = [process, *process.children(recursive=True)]
        except self.psutil.Error:
            return 0
        total = 0
        for member in members:
            try:
                total += int(member.memory_info().rss) // 1024
            except self.psutil.Error:
                continue
        return total


def _backend() -> str | None:
    if (PROC / str(os.getpid()) / "status").exists():
        return "proc"
    try:
        import psutil  # noqa: F401
    except ImportError:
        return None
    return "psutil"


class RssSampler:
    """Samples a fixed set of process trees on a thread until stopped."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.backend = _backend()
        self._psutil = _Psutil() if self.backend == "psutil" else None
        self.own_peak_kb: dict[int, int] = dict.fromkeys(pids, 0)
        self.tree_peak_kb: dict[int, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        if self.backend is not None:
            self._thread.start()
        return self

    def _sample(self) -> None:
        parents = _parents() if self.backend == "proc" else {}
        for pid in self.pids:
            if self._psutil is not None:
                own = self._psutil.own_peak_kb(pid)
                tree = self._psutil.tree_kb(pid)
            else:
                own = _status_kb(pid, "VmHWM")
                tree = sum(_status_kb(member, "VmRSS") or 0 for member in _tree(pid, parents))
            if own is not None:
                self.own_peak_kb[pid] = max(self.own_peak_kb[pid], own)
            self.tree_peak_kb[pid] = max(self.tree_peak_kb[pid], tree)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        """Stop sampling (one last sample first, while the processes still run) and return the peaks."""
        if self.backend is not None and self._thread.is_alive():
            self._stop.set()
            self._thread.join(5)
            self._sample()
        per_worker = [
            {
                "pid": pid,
                "peak_rss_mb": round(self.own_peak_kb[pid] / 1024, 1),
                "tree_peak_rss_mb": round(self.tree_peak_kb[pid] / 1024, 1),
            }
            for pid in self.pids
        ]
        return {
            "source": {"proc": "/proc VmHWM", "psutil": "psutil rss samples", None: "unavailable"}[
                self.backend
            ],
            "workers": per_worker,
            "peak_rss_mb": max((w["peak_rss_mb"] for w in per_worker), default=0.0),
            "tree_peak_rss_mb": max((w["tree_peak_rss_mb"] for w in per_worker), default=0.0),
        }
