"""The table on stdout and the JSON file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.machine import summary


def table(header: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> list[str]:
    cells = [[_cell(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        rest = [value.rjust(width) for value, width in zip(row[1:], widths[1:], strict=True)]
        parts = [row[0].ljust(widths[0]), *rest]
        lines.append(indent + "  ".join(parts))
    return lines


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _target(value: float | None, target: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    met = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    return f"{value} (target {sign} {target}: {'met' if met else 'NOT met'})"


def accept_lines(result: dict[str, Any]) -> list[str]:
    best = result["best"]
    lines = [
        f"1. Accept path: POST /v1/callbacks ({result['loader']}, {result['connections']} connections, "
        f"{result['duration_s']:g} s runs, best of {result['repeats']}; gunicorn per the Procfile, "
        f"WEB_CONCURRENCY={result['web_concurrency']})"
    ]
    rows = [
        [name, best[name]["rps"], best[name]["p50_ms"], best[name]["p99_ms"], best[name]["errors"]]
        for name in ("kyc-relay", "bare")
    ]
    lines += table(["", "req/s", "p50 ms", "p99 ms", "errors"], rows)
    lines.append(f"  ratio kyc-relay/bare: {_target(result['ratio_rps'], result['target_ratio'], True)}")
    return lines


def pipeline_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        f"2. Pipeline: {result['candidates']} candidates, {result['workers']} worker processes, "
        f"sandbox {result['sandbox_latency_s'] * 1000:g} ms, "
        f"receiver {result['receiver_delay_s'] * 1000:g} ms, "
        f"budget {result['budget_s']:g} s per side"
    ]
    rows = []
    for name in ("kyc-relay", "naive"):
        side = result[name]
        memory = side["memory"]
        rows.append(
            [
                name,
                f"{side['reached']}/{side['candidates']}",
                side["elapsed_s"],
                side["candidates_per_s"],
                side["latency_p50_ms"],
                side["latency_p99_ms"],
                memory["peak_rss_mb"],
                memory["tree_peak_rss_mb"],
            ]
        )
    header = ["", "reached", "seconds", "cand/s", "e2e p50 ms", "e2e p99 ms", "RSS MB", "tree RSS MB"]
    lines += table(header, rows)
    lines.append(
        f"  ratio kyc-relay/naive: {_target(result['ratio_throughput'], result['target_ratio'], True)}"
    )
    relay = result["kyc-relay"]
    outbox = relay["outbox"]
    if "error" in outbox:
        lines.append(f"  outbox check failed: {outbox['error']}")
    else:
        lines.append(
            f"  kyc-relay outbox: {outbox['events']} events, "
            f"{outbox['candidates_with_one_event']} candidates with exactly one, "
            f"{outbox['delivered']} delivered ({outbox['attempts']} attempts), "
            f"receiver duplicates {relay['receiver_duplicates']}: "
            f"{'nothing lost or duplicated' if relay['no_loss_no_duplicate'] else 'LOSS OR DUPLICATES'}"
        )
    lines.append(
        "  RSS MB: peak (VmHWM) of the worker process; tree: peak summed RSS with its children "
        "(scheduler, work horses); e2e: callback answered -> receiver got the event"
    )
    return lines


def apicost_lines(result: dict[str, Any]) -> list[str]:
    steps = ", ".join(f"{status} +{minutes} min" for status, minutes in result["steps_simulated_min"].items())
    lines = [
        f"3. Blockpass API calls: {result['candidates']} candidates, incomplete -> {steps}; "
        f"schedules / {result['time_factor']:g}"
    ]
    rows = []
    for name, figures in result["scenarios"].items():
        rows.append(
            [
                f"{name} ({figures['label']})",
                figures["calls"],
                figures["single_calls"],
                figures["list_calls"],
                f"{figures['transitions']}/{figures['expected_transitions']}",
                figures["calls_per_transition"],
                figures["single_calls_per_candidate"],
                figures["sweeps"],
                figures["list_calls_per_sweep_per_100_pending"],
            ]
        )
    header = [
        "",
        "calls",
        "single",
        "list",
        "transitions",
        "calls/trans",
        "single/cand",
        "sweeps",
        "list/sweep/100",
    ]
    lines += table(header, rows)
    lines.append(
        "  calls per transition with webhooks: "
        + _target(result["calls_per_transition_with_webhooks"], result["target_calls_per_transition"], False)
    )
    lines.append(
        "  list calls per sweep per 100 pending (sweep alone): "
        + _target(
            result["list_calls_per_sweep_per_100_pending"],
            result["target_list_calls_per_sweep_per_100"],
            False,
        )
    )
    return lines


RENDERERS = {"accept": accept_lines, "pipeline": pipeline_lines, "apicost": apicost_lines}


def render(results: dict[str, Any]) -> str:
    lines = [summary(results["machine"]), ""]
    for name, result in results["benchmarks"].items():
        if "error" in result:
            lines.append(f"{name}: FAILED: {result['error']}")
        else:
            try:
                lines += RENDERERS[name](result)
            except (KeyError, TypeError) as exc:  # a partial result must not hide the others
                lines.append(f"{name}: could not render ({type(exc).__name__}: {exc}); see the JSON")
        lines.append("")
    return "\n".join(lines)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(results, indent=2, default=str) + "\n")
    temporary.replace(path)
