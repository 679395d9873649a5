"""What a run measures and how hard: one object handed to every benchmark."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCHMARKS = ("accept", "pipeline", "apicost")

# Progress lines for the terminal.
Say = Callable[[str], None]


@dataclass
class Options:
    results_dir: Path
    benchmarks: tuple[str, ...] = BENCHMARKS
    database: str = "sqlite"
    postgres_url: str = ""
    # accept
    loader: str = "auto"
    connections: int = 8
    duration: float = 10.0
    warmup: float = 3.0
    repeats: int = 2
    # pipeline
    candidates: int = 2000
    workers: int = 2
    budget: float = 150.0
    sandbox_latency: float = 0.15
    receiver_delay: float = 0.05
    # apicost
    api_candidates: int = 200
    time_factor: float = 600.0
    scenarios: tuple[str, ...] = ("webhooks", "webhooks-only", "sweep")

    @property
    def log_dir(self) -> Path:
        return self.results_dir / "logs"
