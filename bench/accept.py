"""Benchmark 1: the accept path, POST /v1/callbacks, kyc-relay vs a bare Flask app.

Both are served by the Procfile's web command (gunicorn, WEB_CONCURRENCY=2, its access log, the
repository's gunicorn.conf.py), one after the other on the same machine with the same load; each
pair of runs is repeated and the better run of each side is kept. kyc-relay gets a throwaway Valkey;
no worker runs, so the queue only grows (it is emptied between runs).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from redis import Redis

from bench import load, stack
from bench.options import Options, Say
from bench.procs import Procs
from bench.stats import ratio

BARE_APP = "bench.bare_app:app"
TARGET = 0.75


def run(opts: Options, say: Say) -> dict[str, Any]:
    loader = load.choose(opts.loader)
    with (
        tempfile.TemporaryDirectory(prefix="kyc-bench-accept-") as tmp,
        Procs(opts.log_dir / "accept") as procs,
    ):
        work = Path(tmp)
        with (
            stack.valkey(work / "valkey") as redis_url,
            stack.database(opts.database, work, opts.postgres_url) as database_url,
        ):
            relay_port, bare_port, sandbox_port, receiver_port = stack.free_ports(4)
            env = stack.relay_env(
                web_port=relay_port,
                sandbox_port=sandbox_port,
                receiver_port=receiver_port,
                redis_url=redis_url,
                database_url=database_url,
            )
            stack.migrate(procs, env)
            _, relay_url = stack.start_web(procs, env, relay_port, name="relay-web")
            _, bare_url = stack.start_web(procs, env, bare_port, name="bare-web", app=BARE_APP)
            targets = {"kyc-relay": f"{relay_url}/v1/callbacks", "bare": f"{bare_url}/v1/callbacks"}
            redis = Redis.from_url(redis_url)
            try:
                return _measure(opts, loader, targets, redis, procs, say)
            finally:
                redis.close()


def _measure(
    opts: Options, loader: str, targets: dict[str, str], redis: Redis, procs: Procs, say: Say
) -> dict[str, Any]:
    for name, url in targets.items():
        say(f"accept: warming up {name} for {opts.warmup:.0f} s")
        load.run(loader, url, opts.connections, opts.warmup, prefix=f"warm-{name}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for attempt in range(opts.repeats):
        for name, url in targets.items():
            procs.check()
            redis.flushdb()  # the same empty queue for every run
            result = load.run(loader, url, opts.connections, opts.duration, prefix=f"r{attempt}-{name}")
            runs[name].append(result.as_dict())
            say(
                f"accept: {name} run {attempt + 1}: {result.rps:.0f} req/s, p50 {result.p50_ms} ms, "
                f"p99 {result.p99_ms} ms, {result.errors} errors"
            )
    best = {name: max(results, key=lambda r: r["rps"]) for name, results in runs.items()}
    value = ratio(best["kyc-relay"]["rps"], best["bare"]["rps"])
    return {
        "loader": loader,
        "connections": opts.connections,
        "duration_s": opts.duration,
        "warmup_s": opts.warmup,
        "repeats": opts.repeats,
        "web_command": stack.procfile()["web"],
        "web_concurrency": 2,
        "runs": runs,
        "best": best,
        "ratio_rps": value,
        "target_ratio": TARGET,
        "meets_target": None if value is None else value >= TARGET,
    }
