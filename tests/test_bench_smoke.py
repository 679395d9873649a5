"""`python -m bench --smoke`: each benchmark still runs end to end and produces its figures.

Tiny sizes and short runs, one worker. No timing is asserted: only that the figures are there and,
for the pipeline, that kyc-relay neither lost nor duplicated an event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def _run(benchmark: str, results_dir: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench", "--smoke", "--only", benchmark, "--results-dir", str(results_dir)]
    process = subprocess.Popen(
        argv, cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: the bench then stops every process it started.
        process.terminate()
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(
            f"python -m bench --smoke --only {benchmark} did not finish in {TIMEOUT} s:\n{output[-6000:]}"
        )
    assert process.returncode == 0, output[-6000:]
    results: dict[str, Any] = json.loads((results_dir / "latest.json").read_text())
    assert results["machine"]["cores"], results["machine"]
    assert results["machine"]["python"]
    figures: dict[str, Any] = results["benchmarks"][benchmark]
    assert "error" not in figures, figures
    return figures


def test_accept_path(tmp_path: Path) -> None:
    figures = _run("accept", tmp_path)
    for side in ("kyc-relay", "bare"):
        best = figures["best"][side]
        assert best["requests"] > 0 and best["rps"] > 0, best
        assert best["p50_ms"] is not None and best["p99_ms"] is not None, best
    assert figures["ratio_rps"] is not None


def test_pipeline(tmp_path: Path) -> None:
    figures = _run("pipeline", tmp_path)
    for side in ("kyc-relay", "naive"):
        result = figures[side]
        assert result["complete"], result
        assert result["candidates_per_s"] and result["latency_p99_ms"] is not None, result
        assert result["memory"]["workers"], result["memory"]
    relay = figures["kyc-relay"]
    outbox = relay["outbox"]
    assert outbox.get("ok"), outbox
    assert outbox["events"] == relay["candidates"] == outbox["delivered"], outbox
    assert relay["receiver_duplicates"] == 0, relay
    assert relay["no_loss_no_duplicate"], relay
    assert figures["ratio_throughput"] is not None


def test_blockpass_api_cost(tmp_path: Path) -> None:
    figures = _run("apicost", tmp_path)
    for name, scenario in figures["scenarios"].items():
        assert scenario["calls"] > 0 and scenario["transitions"], (name, scenario)
        assert scenario["calls_per_transition"] is not None, (name, scenario)
    assert figures["calls_per_transition_with_webhooks"] is not None
    assert figures["list_calls_per_sweep_per_100_pending"] is not None
