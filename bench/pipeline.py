"""Benchmark 2: N candidates from callback to notification, kyc-relay vs naive RQ jobs.

The sandbox answers each API call after `sandbox_latency`, the receiver each delivery after
`receiver_delay`. kyc-relay: its web process takes the callbacks (a burst of N, distinct refIds),
W `python -m worker` processes do the rest; polls and the sweep are pushed out of the way, there is
no call budget. The baseline: W plain `rq worker`s, one job per candidate (bench/naive.py), against
a Valkey of its own. Each side gets `budget` seconds; a side that does not finish reports what it
reached. For kyc-relay the database is read afterwards: one event per candidate, each delivered once.
"""

from __future__ import annotations

import http.client
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench import naive, stack
from bench.load import Poster, callback_body
from bench.options import Options, Say
from bench.procs import Proc, Procs
from bench.receiver import ReceiverClient
from bench.rss import RssSampler
from bench.stats import ms, percentile, ratio
from devstack.processes import python
from sandbox.testing import SandboxClient

PREFIX = "pipe"
CALLBACK_THREADS = 8
SETUP_THREADS = 4
# After the last candidate arrived, how long late duplicates still count.
LINGER = 1.0
TARGET = 20.0


@dataclass
class Shared:
    """What both sides use: the sandbox, the receiver, the candidates."""

    env: dict[str, str]
    sandbox: SandboxClient
    sandbox_port: int
    receiver: ReceiverClient
    receiver_port: int
    ref_ids: list[str]

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}/hook"


def run(opts: Options, say: Say) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="kyc-bench-pipeline-") as tmp,
        Procs(opts.log_dir / "pipeline") as procs,
    ):
        work = Path(tmp)
        sandbox_port, receiver_port = stack.free_ports(2)
        env = stack.relay_env(
            web_port=0, sandbox_port=sandbox_port, receiver_port=receiver_port, redis_url="", database_url=""
        )
        _, sandbox_url = stack.start_sandbox(procs, env, sandbox_port)
        delay = str(opts.receiver_delay)
        procs.start(
            "receiver", python("-m", "bench.receiver", "--port", str(receiver_port), "--delay", delay), env
        )
        stack.wait_http(f"http://127.0.0.1:{receiver_port}/count", procs)
        sandbox = SandboxClient(sandbox_url, env["BLOCKPASS_CLIENT_ID"], env["BLOCKPASS_API_KEY"])
        shared = Shared(
            env=env,
            sandbox=sandbox,
            sandbox_port=sandbox_port,
            receiver=ReceiverClient(f"http://127.0.0.1:{receiver_port}"),
            receiver_port=receiver_port,
            ref_ids=[f"{PREFIX}-{i:05d}" for i in range(opts.candidates)],
        )
        say(f"pipeline: creating {opts.candidates} waiting candidates in the sandbox")
        _create_candidates(sandbox, shared.ref_ids)
        sandbox.set_latency(opts.sandbox_latency)
        try:
            relay = _relay(opts, procs, work, shared, say)
            baseline = _naive(opts, procs, work, shared, say)
        finally:
            shared.receiver.close()
    value = ratio(relay["candidates_per_s"], baseline["candidates_per_s"], 2)
    return {
        "candidates": opts.candidates,
        "workers": opts.workers,
        "sandbox_latency_s": opts.sandbox_latency,
        "receiver_delay_s": opts.receiver_delay,
        "budget_s": opts.budget,
        "kyc-relay": relay,
        "naive": baseline,
        "ratio_throughput": value,
        "target_ratio": TARGET,
        "meets_target": None if value is None else value >= TARGET,
    }


def _create_candidates(sandbox: SandboxClient, ref_ids: list[str]) -> None:
    local = threading.local()

    def create(ref_id: str) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = SandboxClient(sandbox.url, sandbox.client_id, sandbox.api_key)
        client.create(refId=ref_id, status="waiting")

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(create, ref_ids))


def _relay(opts: Options, procs: Procs, work: Path, shared: Shared, say: Say) -> dict[str, Any]:
    with (
        stack.valkey(work / "valkey-relay") as redis_url,
        stack.database(opts.database, work, opts.postgres_url) as database_url,
    ):
        (web_port,) = stack.free_ports(1)
        env = stack.relay_env(
            web_port=web_port,
            sandbox_port=shared.sandbox_port,
            receiver_port=shared.receiver_port,
            redis_url=redis_url,
            database_url=database_url,
            settings={
                "ALLOW_PRIVATE_DESTINATIONS": "true",
                "BLOCKPASS_RATE_LIMIT": "0",
                "SWEEP_INTERVAL": "0",
                "SYNC_POLL_SCHEDULE": "3600",
                "MAINTENANCE_INTERVAL": "10",
            },
        )
        stack.migrate(procs, env)
        web, web_url = stack.start_web(procs, env, web_port)
        workers, registered = stack.start_workers(procs, env, opts.workers, redis_url, name="relay-worker")
        shared.receiver.reset()
        say(f"pipeline: kyc-relay, {opts.candidates} callbacks, {opts.workers} workers")
        sampler = RssSampler([worker.pid for worker in workers]).start()
        try:
            figures = _drive(opts, shared, procs, workers, _callbacks(f"{web_url}/v1/callbacks"))
        finally:
            memory = sampler.stop()
            procs.stop(*workers, web)
        figures["rq_workers_registered"] = registered
        figures["memory"] = memory
        figures["outbox"] = _outbox(database_url, shared.ref_ids)
        figures["no_loss_no_duplicate"] = bool(
            figures["outbox"].get("ok") and figures["complete"] and figures["receiver_duplicates"] == 0
        )
        say(_line("kyc-relay", figures))
        return figures


def _naive(opts: Options, procs: Procs, work: Path, shared: Shared, say: Say) -> dict[str, Any]:
    with stack.valkey(work / "valkey-naive") as redis_url:
        workers = [
            procs.start(f"naive-worker-{i + 1}", naive.worker_argv(redis_url), shared.env)
            for i in range(opts.workers)
        ]
        registered = stack.wait_rq_workers(procs, redis_url, opts.workers)
        shared.receiver.reset()
        say(f"pipeline: naive RQ jobs, {opts.candidates} jobs, {opts.workers} workers")
        queue = naive.queue(redis_url)
        api_base = shared.sandbox.base

        def enqueue(ref_ids: Iterable[str], answered: dict[str, float], failed: list[int]) -> None:
            for ref_id in ref_ids:
                naive.enqueue(queue, ref_id, api_base, shared.sandbox.api_key, shared.receiver_url)
                answered[ref_id] = time.monotonic()

        sampler = RssSampler([worker.pid for worker in workers]).start()
        try:
            figures = _drive(opts, shared, procs, workers, enqueue)
        finally:
            memory = sampler.stop()
            procs.stop(*workers)
            queue.connection.close()
        figures["rq_workers_registered"] = registered
        figures["memory"] = memory
        say(_line("naive", figures))
        return figures


Submit = Callable[[Iterable[str], dict[str, float], list[int]], None]


def _callbacks(url: str) -> Submit:
    """Post the callbacks from CALLBACK_THREADS threads; `answered` gets the time each 202 came back."""

    def submit(ref_ids: Iterable[str], answered: dict[str, float], failed: list[int]) -> None:
        ids = list(ref_ids)
        chunks = [ids[i::CALLBACK_THREADS] for i in range(CALLBACK_THREADS)]

        def post(chunk: list[str]) -> None:
            poster = Poster(url)
            try:
                for ref_id in chunk:
                    for _ in range(3):  # a refused connection under the burst is sent again
                        try:
                            status = poster.post(callback_body(ref_id))
                        except (OSError, http.client.HTTPException):
                            continue
                        if status == 202:
                            answered[ref_id] = time.monotonic()
                            break
                    else:
                        failed.append(1)
            finally:
                poster.close()

        with ThreadPoolExecutor(CALLBACK_THREADS) as pool:
            list(pool.map(post, chunks))

    return submit


def _drive(
    opts: Options, shared: Shared, procs: Procs, workers: list[Proc], submit: Submit
) -> dict[str, Any]:
    """Submit every candidate, wait until the receiver saw them all or the budget ran out, then measure."""
    expected = len(shared.ref_ids)
    answered: dict[str, float] = {}
    failed: list[int] = []
    started = time.monotonic()
    deadline = started + opts.budget
    submit(shared.ref_ids, answered, failed)
    submitted = time.monotonic()
    progress: list[tuple[float, int]] = []  # (seconds since the start, candidates reached), once a second
    while time.monotonic() < deadline:
        procs.check(workers)
        reached_now = shared.receiver.count()["distinct"]
        now = time.monotonic() - started
        if not progress or now - progress[-1][0] >= 1.0:
            progress.append((round(now, 1), reached_now))
        if reached_now >= expected:
            break
        time.sleep(0.2)
    stopped_waiting = time.monotonic()
    complete = shared.receiver.count()["distinct"] >= expected
    if complete:
        time.sleep(LINGER)  # late duplicates
    arrivals = shared.receiver.arrivals()
    times: dict[str, list[float]] = arrivals["times"]
    ids: dict[str, list[str]] = arrivals["ids"]
    wanted = set(shared.ref_ids)
    first = {ref: min(at) for ref, at in times.items() if ref in wanted}
    reached = len(first)
    end = max(first.values()) if complete and first else stopped_waiting
    elapsed = end - started
    latencies = [first[ref] - answered[ref] for ref in first if ref in answered]
    duplicated = sum(1 for ref in first if len(times[ref]) > 1)
    redelivered = sum(1 for ref in first if len(ids[ref]) != len(set(ids[ref])))
    return {
        "candidates": expected,
        "reached": reached,
        "complete": complete,
        "submit_s": round(submitted - started, 2),
        "elapsed_s": round(elapsed, 2),
        "candidates_per_s": round(reached / elapsed, 2) if elapsed > 0 else None,
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "submit_failures": len(failed),
        "receiver_posts": sum(len(times[ref]) for ref in first),
        "receiver_duplicates": duplicated,
        "receiver_same_id_twice": redelivered,
        "progress": progress,
    }


def _outbox(database_url: str, ref_ids: list[str]) -> dict[str, Any]:
    """One events row per candidate, and exactly N deliveries delivered (read from kyc-relay's tables)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            per_candidate = {
                ref: count
                for ref, count in connection.execute(
                    text(
                        "SELECT c.ref_id, COUNT(e.id) FROM candidates c "
                        "LEFT JOIN events e ON e.candidate_id = c.id GROUP BY c.ref_id"
                    )
                )
            }
            deliveries = {
                status: count
                for status, count in connection.execute(
                    text("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
                )
            }
            attempts = connection.execute(text("SELECT COUNT(*) FROM attempts")).scalar_one()
    except Exception as exc:  # the schema is kyc-relay's: report what went wrong, never crash the run
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    finally:
        engine.dispose()
    counts = [per_candidate.get(ref, 0) for ref in ref_ids]
    expected = len(ref_ids)
    result = {
        "events": sum(per_candidate.values()),
        "candidates_with_one_event": sum(1 for n in counts if n == 1),
        "candidates_with_several_events": sum(1 for n in counts if n > 1),
        "candidates_without_event": sum(1 for n in counts if n == 0),
        "deliveries": deliveries,
        "delivered": deliveries.get("delivered", 0),
        "attempts": attempts,
    }
    result["ok"] = (
        result["events"] == expected
        and result["candidates_with_one_event"] == expected
        and result["delivered"] == expected
    )
    return result


def _line(name: str, figures: dict[str, Any]) -> str:
    return (
        f"pipeline: {name}: {figures['reached']}/{figures['candidates']} in {figures['elapsed_s']} s, "
        f"{figures['candidates_per_s']} candidates/s, latency p50 {figures['latency_p50_ms']} ms "
        f"p99 {figures['latency_p99_ms']} ms"
    )
