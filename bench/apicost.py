"""Benchmark 3: Blockpass API calls per candidate over a lifecycle, counted by the sandbox.

Each candidate is created incomplete, moves to waiting (and its page posts the widget callback), to
inreview, then to approved: four transitions. Time is simulated: every kyc-relay schedule (polls,
sweep, retries) is divided by `time_factor`, and so is the time between the steps
(STEPS, in simulated minutes, each candidate's from its own previous step). Scenarios, each on a
fresh Valkey and database:

- webhooks      Blockpass webhooks on (signed), with the sweep and polls at their defaults
- webhooks-only webhooks on, no polls, no sweep: what the signals alone cost
- sweep         no webhooks: the sweep and polls alone

Calls come from the sandbox's call log (GET /_sandbox/calls), split into single-candidate calls and
list calls. A sweep is counted at each first-page list call of the status it lists first.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, text

from bench import stack
from bench.load import Poster, callback_body
from bench.options import Options, Say
from bench.procs import Proc, Procs
from bench.stats import ratio
from kyc.config import (
    DEFAULT_DELIVERY_RETRY_SCHEDULE,
    DEFAULT_SWEEP_INTERVAL,
    DEFAULT_SYNC_NOT_FOUND_SCHEDULE,
    DEFAULT_SYNC_POLL_HORIZON,
    DEFAULT_SYNC_POLL_SCHEDULE,
    DEFAULT_SYNC_POLL_SCHEDULE_WITH_SWEEP,
    DEFAULT_SYNC_POLL_SCHEDULE_WITH_WEBHOOKS,
)
from sandbox.testing import SandboxClient

# (status, simulated minutes after the previous step)
STEPS = (("waiting", 10), ("inreview", 60), ("approved", 30))
TRANSITIONS_PER_CANDIDATE = 1 + len(STEPS)  # (new) -> incomplete, then one per step
# In flight and listable: what a sweep pages through, in this lifecycle.
PENDING = ("waiting", "inreview")
# kyc-relay's own defaults for each set-up, compressed by time_factor.
POLL_HORIZON = DEFAULT_SYNC_POLL_HORIZON
NOT_FOUND_SCHEDULE = DEFAULT_SYNC_NOT_FOUND_SCHEDULE
DELIVERY_RETRY_SCHEDULE = DEFAULT_DELIVERY_RETRY_SCHEDULE
SWEEP_INTERVAL = DEFAULT_SWEEP_INTERVAL
NEVER = str(10**9)
MAINTENANCE_INTERVAL = "0.2"
WEBHOOK_SECRET = "bench-blockpass-webhook-secret"  # noqa: S105 - the sandbox's, on loopback
TARGET_CALLS_PER_TRANSITION = 1.2
TARGET_LIST_CALLS_PER_SWEEP_PER_100 = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    webhooks: bool
    sweep: bool
    polls: bool

    @property
    def label(self) -> str:
        parts = ["webhooks" if self.webhooks else "no webhooks"]
        parts.append("sweep" if self.sweep else "no sweep")
        parts.append("polls" if self.polls else "no polls")
        return ", ".join(parts)


SCENARIOS = {
    "webhooks": Scenario("webhooks", webhooks=True, sweep=True, polls=True),
    "webhooks-only": Scenario("webhooks-only", webhooks=True, sweep=False, polls=False),
    "sweep": Scenario("sweep", webhooks=False, sweep=True, polls=True),
}


def _compressed(delays: tuple[float, ...], factor: float) -> str:
    return ",".join(f"{delay / factor:g}" for delay in delays)


def _poll_schedule(scenario: Scenario) -> tuple[float, ...]:
    if scenario.webhooks and scenario.sweep:
        return DEFAULT_SYNC_POLL_SCHEDULE_WITH_WEBHOOKS
    return DEFAULT_SYNC_POLL_SCHEDULE_WITH_SWEEP if scenario.sweep else DEFAULT_SYNC_POLL_SCHEDULE


def settings(scenario: Scenario, factor: float) -> dict[str, str | None]:
    return {
        "BLOCKPASS_RATE_LIMIT": "0",
        "BLOCKPASS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SWEEP_INTERVAL": f"{SWEEP_INTERVAL / factor:g}" if scenario.sweep else "0",
        "SYNC_POLL_SCHEDULE": _compressed(_poll_schedule(scenario), factor) if scenario.polls else NEVER,
        "SYNC_POLL_HORIZON": f"{POLL_HORIZON / factor:g}",
        "SYNC_NOT_FOUND_SCHEDULE": _compressed(NOT_FOUND_SCHEDULE, factor),
        "DELIVERY_RETRY_SCHEDULE": _compressed(DELIVERY_RETRY_SCHEDULE, factor),
        "MAINTENANCE_INTERVAL": MAINTENANCE_INTERVAL,
        # Events are recorded whether or not anyone subscribes; deliveries are not what is counted here.
        "NOTIFY_URL": None,
        "NOTIFY_SECRET": None,
    }


def run(opts: Options, say: Say) -> dict[str, Any]:
    unknown = [name for name in opts.scenarios if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; choose from {sorted(SCENARIOS)}")
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="kyc-bench-apicost-") as tmp,
        Procs(opts.log_dir / "apicost") as procs,
    ):
        work = Path(tmp)
        (sandbox_port,) = stack.free_ports(1)
        env = stack.relay_env(
            web_port=0, sandbox_port=sandbox_port, receiver_port=0, redis_url="", database_url=""
        )
        _, sandbox_url = stack.start_sandbox(procs, env, sandbox_port)
        sandbox = SandboxClient(sandbox_url, env["BLOCKPASS_CLIENT_ID"], env["BLOCKPASS_API_KEY"])
        for name in opts.scenarios:
            results[name] = _scenario(opts, SCENARIOS[name], procs, work / name, sandbox, sandbox_port, say)
    webhooks = results.get("webhooks", {})
    sweep = results.get("sweep", {})
    return {
        "candidates": opts.api_candidates,
        "time_factor": opts.time_factor,
        "steps_simulated_min": {status: minutes for status, minutes in STEPS},
        "scenarios": results,
        "calls_per_transition_with_webhooks": webhooks.get("calls_per_transition"),
        "target_calls_per_transition": TARGET_CALLS_PER_TRANSITION,
        "list_calls_per_sweep_per_100_pending": sweep.get("list_calls_per_sweep_per_100_pending"),
        "target_list_calls_per_sweep_per_100": TARGET_LIST_CALLS_PER_SWEEP_PER_100,
    }


def _scenario(
    opts: Options,
    scenario: Scenario,
    procs: Procs,
    work: Path,
    sandbox: SandboxClient,
    sandbox_port: int,
    say: Say,
) -> dict[str, Any]:
    sandbox.reset()
    with (
        stack.valkey(work / "valkey") as redis_url,
        stack.database(opts.database, work, opts.postgres_url) as database_url,
    ):
        (web_port,) = stack.free_ports(1)
        env = stack.relay_env(
            web_port=web_port,
            sandbox_port=sandbox_port,
            receiver_port=0,
            redis_url=redis_url,
            database_url=database_url,
            settings=settings(scenario, opts.time_factor),
        )
        stack.migrate(procs, env)
        web, web_url = stack.start_web(procs, env, web_port)
        workers: list[Proc] = []
        try:
            workers, _ = stack.start_workers(procs, env, opts.workers, redis_url)
            if scenario.webhooks:
                sandbox.set_webhook(f"{web_url}/v1/blockpass/webhooks", secret=WEBHOOK_SECRET)
            say(f"apicost: {scenario.name} ({scenario.label}), {opts.api_candidates} candidates")
            lifecycle = _lifecycle(opts, scenario, procs, sandbox, web_url, database_url)
        finally:
            procs.stop(*workers, web)
        webhook_stats = sandbox.control("GET", "/webhooks").json().get("stats") if scenario.webhooks else None
        figures = _count(lifecycle, sandbox.calls(), opts.api_candidates)
        figures["label"] = scenario.label
        figures["webhooks"] = webhook_stats
        say(
            f"apicost: {scenario.name}: {figures['calls']} calls ({figures['single_calls']} single, "
            f"{figures['list_calls']} list) for {figures['transitions']} transitions: "
            f"{figures['calls_per_transition']} per transition"
        )
        return figures


@dataclass
class Lifecycle:
    started: float  # wall clock, to compare with the call log
    ended: float
    pending: list[tuple[float, int]]  # (wall time, change in pending candidates)
    transitions: int | None
    settled: bool
    callbacks_failed: int
    kinds: dict[str, int]
    db_error: str | None = None


def _lifecycle(
    opts: Options, scenario: Scenario, procs: Procs, sandbox: SandboxClient, web_url: str, database_url: str
) -> Lifecycle:
    ref_ids = [f"api-{scenario.name}-{i:04d}" for i in range(opts.api_candidates)]
    pending: list[tuple[float, int]] = []
    poster = Poster(f"{web_url}/v1/callbacks")
    failed = 0
    sandbox.clear_calls()
    started = time.time()
    # Each candidate's steps are spaced from its own previous step: the batch takes a while to go through.
    last: dict[str, float] = {}
    for ref_id in ref_ids:
        sandbox.create(refId=ref_id, status="incomplete")
        last[ref_id] = time.monotonic()
    for status, minutes in STEPS:
        for ref_id in ref_ids:
            _sleep_until(last[ref_id] + minutes * 60 / opts.time_factor, procs)
            sandbox.move(ref_id, status)
            last[ref_id] = time.monotonic()
            if status == "waiting":
                pending.append((time.time(), 1))
                # The widget's page reports the finished submission, as it would in production.
                try:
                    failed += poster.post(callback_body(ref_id)) != 202
                except OSError:
                    failed += 1
            elif status not in PENDING:
                pending.append((time.time(), -1))
    poster.close()
    settle = time.monotonic() + max(10.0, 3 * SWEEP_INTERVAL / opts.time_factor)
    transitions, settled, error = _recorded(database_url)
    while not settled and time.monotonic() < settle:
        procs.check()
        time.sleep(0.2)
        transitions, settled, error = _recorded(database_url)
    return Lifecycle(started, time.time(), pending, transitions, settled, failed, _kinds(database_url), error)


def _sleep_until(moment: float, procs: Procs) -> None:
    while (left := moment - time.monotonic()) > 0:
        procs.check()
        time.sleep(min(left, 0.2))


def _recorded(database_url: str) -> tuple[int | None, bool, str | None]:
    """(transitions recorded, whether every candidate is approved in kyc-relay's database, error)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            transitions = connection.execute(text("SELECT COUNT(*) FROM status_changes")).scalar_one()
            candidates = connection.execute(text("SELECT COUNT(*) FROM candidates")).scalar_one()
            approved = connection.execute(
                text("SELECT COUNT(*) FROM candidates WHERE status = 'approved'")
            ).scalar_one()
    except Exception as exc:  # the schema is kyc-relay's
        return None, False, f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        engine.dispose()
    return int(transitions), candidates > 0 and approved == candidates, None


def _kinds(database_url: str) -> dict[str, int]:
    """Recorded transitions by kind ("incomplete -> waiting": n); empty when the table cannot be read."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT from_status, to_status, COUNT(*) FROM status_changes "
                    "GROUP BY from_status, to_status"
                )
            ).all()
    except Exception:
        return {}
    finally:
        engine.dispose()
    return {f"{before or '(new)'} -> {after}": int(count) for before, after, count in sorted(rows, key=str)}


def _when(call: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(call["at"]).replace("Z", "+00:00")).timestamp()


def _list_page(path: str) -> tuple[str, int] | None:
    """(listed status, skip) for a list call, None for a single-candidate call."""
    parts = urlsplit(path)
    if "/applicants" not in parts.path:
        return None
    status = parts.path.rpartition("/applicants")[2].strip("/") or "*"
    skip = parse_qs(parts.query).get("skip", ["0"])[0]
    return status, int(skip) if skip.isdigit() else 0


def _pending_at(moment: float, pending: list[tuple[float, int]]) -> int:
    return sum(change for at, change in pending if at <= moment)


def _count(lifecycle: Lifecycle, calls: list[dict[str, Any]], candidates: int) -> dict[str, Any]:
    window = [call for call in calls if lifecycle.started <= _when(call) <= lifecycle.ended + 0.5]
    lists = [(call, page) for call in window if (page := _list_page(str(call["path"]))) is not None]
    single = len(window) - len(lists)
    # Sweep boundaries: first pages of the status that is listed first.
    first_status = lists[0][1][0] if lists else None
    starts = [_when(call) for call, (status, skip) in lists if status == first_status and skip == 0]
    per_sweep: list[tuple[int, int]] = []  # (list calls, pending candidates) for each sweep
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else float("inf")
        made = sum(1 for call, _ in lists if start <= _when(call) < end)
        per_sweep.append((made, _pending_at(start, lifecycle.pending)))
    busy = [(made, pending) for made, pending in per_sweep if pending > 0]
    calls_per_busy_sweep = sum(made for made, _ in busy) / len(busy) if busy else None
    mean_pending = sum(pending for _, pending in busy) / len(busy) if busy else None
    transitions = lifecycle.transitions
    return {
        "calls": len(window),
        "single_calls": single,
        "list_calls": len(lists),
        "errors": sum(1 for call in window if int(call.get("status", 200)) >= 400),
        "transitions": transitions,
        "expected_transitions": candidates * TRANSITIONS_PER_CANDIDATE,
        "all_approved": lifecycle.settled,
        "calls_per_transition": ratio(len(window), transitions, 2),
        "single_calls_per_transition": ratio(single, transitions, 2),
        "calls_per_candidate": ratio(len(window), candidates, 2),
        "single_calls_per_candidate": ratio(single, candidates, 2),
        "sweeps": len(starts),
        "sweeps_with_pending": len(busy),
        "list_calls_per_sweep": None if calls_per_busy_sweep is None else round(calls_per_busy_sweep, 2),
        "mean_pending_per_sweep": None if mean_pending is None else round(mean_pending, 1),
        "list_calls_per_sweep_per_100_pending": (
            None
            if calls_per_busy_sweep is None or not mean_pending
            else round(calls_per_busy_sweep / (mean_pending / 100), 2)
        ),
        "transitions_by_kind": lifecycle.kinds,
        "callbacks_failed": lifecycle.callbacks_failed,
        "seconds": round(lifecycle.ended - lifecycle.started, 1),
        "db_error": lifecycle.db_error,
    }
