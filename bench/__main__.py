"""`python -m bench [--only accept,pipeline,apicost] [--smoke] ...`: run the benchmarks, print a table,
write bench/results/latest.json."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import accept, apicost, load, machine, pipeline, report
from bench.options import BENCHMARKS, Options, Say
from bench.stack import DEFAULT_POSTGRES_URL
from devstack.environment import REPO_ROOT

RUNNERS: dict[str, Callable[[Options, Say], dict[str, Any]]] = {
    "accept": accept.run,
    "pipeline": pipeline.run,
    "apicost": apicost.run,
}
EXIT_INTERRUPTED = 130


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS)
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes and short runs: checks the bench works"
    )
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("KYC_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server for --database postgres (each run makes and drops a schema of its own)",
    )
    accept_group = parser.add_argument_group("accept path")
    accept_group.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    accept_group.add_argument("--connections", type=int, default=8)
    accept_group.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    accept_group.add_argument("--warmup", type=float, default=3.0)
    accept_group.add_argument("--repeats", type=int, default=2)
    pipeline_group = parser.add_argument_group("pipeline")
    pipeline_group.add_argument("--candidates", type=int, default=2000)
    pipeline_group.add_argument("--workers", type=int, default=2, help="worker processes (also for apicost)")
    pipeline_group.add_argument("--budget", type=float, default=150.0, help="seconds per side at most")
    pipeline_group.add_argument("--sandbox-latency", type=float, default=0.15)
    pipeline_group.add_argument("--receiver-delay", type=float, default=0.05)
    cost_group = parser.add_argument_group("Blockpass API cost")
    cost_group.add_argument("--api-candidates", type=int, default=200)
    cost_group.add_argument(
        "--time-factor", type=float, default=600.0, help="simulated seconds per real second"
    )
    cost_group.add_argument("--scenarios", default=",".join(apicost.SCENARIOS))
    args = parser.parse_args(argv)

    chosen = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"--only: unknown {unknown}; choose from {', '.join(BENCHMARKS)}")
    opts = Options(
        results_dir=args.results_dir.resolve(),
        benchmarks=chosen,
        database=args.database,
        postgres_url=args.postgres_url,
        loader=args.loader,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        repeats=args.repeats,
        candidates=args.candidates,
        workers=args.workers,
        budget=args.budget,
        sandbox_latency=args.sandbox_latency,
        receiver_delay=args.receiver_delay,
        api_candidates=args.api_candidates,
        time_factor=args.time_factor,
        scenarios=tuple(name.strip() for name in args.scenarios.split(",") if name.strip()),
    )
    if args.smoke:
        opts.duration, opts.warmup, opts.repeats = 1.0, 0.5, 1
        opts.candidates, opts.workers, opts.budget = 20, 1, 40.0
        opts.api_candidates, opts.time_factor = 5, 3000.0
    return opts


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C: every `with` block stops what it started.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)

    def say(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

    results: dict[str, Any] = {
        "machine": machine.describe(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {**asdict(opts), "wrk": load.wrk_path()},
        "benchmarks": {},
    }
    say(machine.summary(results["machine"]))
    latest = opts.results_dir / "latest.json"
    code = 0
    try:
        for name in opts.benchmarks:
            started = time.monotonic()
            try:
                figures = RUNNERS[name](opts, say)
            except KeyboardInterrupt:
                results["benchmarks"][name] = {"error": "interrupted"}
                raise
            except Exception as exc:
                traceback.print_exc()
                figures = {"error": f"{type(exc).__name__}: {exc}"}
                code = 1
            figures["wall_s"] = round(time.monotonic() - started, 1)
            results["benchmarks"][name] = figures
            report.write(results, latest)
    except KeyboardInterrupt:
        say("interrupted: every process this run started has been stopped")
        code = EXIT_INTERRUPTED
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report.write(results, latest)
    print()
    print(report.render(results))
    print(f"figures written to {latest}")
    return code


if __name__ == "__main__":
    sys.exit(main())
