"""The Prometheus text format for kyc-relay's figures."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping

from kyc.metrics import BUCKETS

# name: (type, help). Names not listed here are still exposed, untyped.
FAMILIES = {
    "kyc_callbacks_total": ("counter", "Widget callbacks, by outcome and, when rejected, reason."),
    "kyc_blockpass_webhooks_total": ("counter", "Blockpass webhooks received, by outcome and event."),
    "kyc_syncs_total": ("counter", "Candidate syncs, by outcome."),
    "kyc_blockpass_calls_total": ("counter", "Blockpass API calls, by route and HTTP status code."),
    "kyc_blockpass_call_seconds": ("histogram", "Blockpass API call latency, by route."),
    "kyc_transitions_total": ("counter", "Recorded status transitions, by from and to status."),
    "kyc_deliveries_total": ("counter", "Delivery attempts, by outcome."),
    "kyc_delivery_seconds": ("histogram", "Delivery attempt latency, by outcome."),
    "kyc_sweeps_total": ("counter", "Reconciliation sweeps, by whether they completed."),
    "kyc_queue_jobs": ("gauge", "RQ jobs, by state."),
    "kyc_oldest_undelivered_event_seconds": ("gauge", "Age of the oldest event not yet delivered."),
    "kyc_deliveries_pending": ("gauge", "Deliveries waiting for an attempt or a retry."),
}
_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)")


def render(
    counters: Mapping[str, float], histograms: Mapping[str, float], gauges: Mapping[str, float]
) -> str:
    by_family: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for key, value in counters.items():
        by_family[_family(key)].append((key, value))
    for key, value in gauges.items():
        by_family[_family(key)].append((key, value))
    for key, value in _cumulative(histograms).items():
        by_family[_family(key, histogram=True)].append((key, value))
    lines = []
    for family in sorted(by_family):
        kind, text = FAMILIES.get(family, ("untyped", ""))
        if text:
            lines.append(f"# HELP {family} {text}")
        lines.append(f"# TYPE {family} {kind}")
        lines.extend(f"{key} {_number(value)}" for key, value in sorted(by_family[family]))
    return "\n".join(lines) + "\n"


def _family(key: str, histogram: bool = False) -> str:
    match = _NAME.match(key)
    name = match.group(1) if match else key
    if histogram:
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
    return name


def _cumulative(parts: Mapping[str, float]) -> dict[str, float]:
    """Stored buckets count their own range; Prometheus wants running totals, +Inf included."""
    order = [str(edge) for edge in BUCKETS] + ["+Inf"]
    result: dict[str, float] = {}
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in parts.items():
        if "_bucket{" in key:
            head, _, rest = key.partition('le="')
            edge, _, tail = rest.partition('"')
            groups[head + "\0" + tail][edge] = value
        else:
            result[key] = value
    for group, counts in groups.items():
        head, tail = group.split("\0")
        running = 0.0
        for edge in order:
            running += counts.get(edge, 0.0)
            result[f'{head}le="{edge}"{tail}'] = running
    return result


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
