"""Counters and latency histograms kept in Redis, so every gunicorn worker and every
RQ worker adds to the same figures and any web process can serve them all.

Label values are the service's own vocabulary (outcomes, statuses, codes), never
identifiers or identity data.
"""

from __future__ import annotations

import logging
import re

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger("kyc.metrics")

COUNTERS_KEY = "kyc:metrics:counters"
HISTOGRAMS_KEY = "kyc:metrics:histograms"
# Seconds; spans a local webhook receiver to a slow Blockpass answer.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.:/-]")


def _series(name: str, labels: dict[str, object]) -> str:
    if not labels:
        return name
    inner = ",".join(
        f'{key}="{_LABEL_SAFE.sub("_", str(value))[:64]}"' for key, value in sorted(labels.items())
    )
    return f"{name}{{{inner}}}"


class Metrics:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def incr(self, name: str, amount: int = 1, **labels: object) -> None:
        # Metrics never break the work they measure.
        try:
            self.redis.hincrby(COUNTERS_KEY, _series(name, labels), amount)
        except RedisError:
            log.warning("metric %s not recorded: Redis unavailable", name)

    def observe(self, name: str, seconds: float, **labels: object) -> None:
        bucket = next((str(edge) for edge in BUCKETS if seconds <= edge), "+Inf")
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(HISTOGRAMS_KEY, _series(f"{name}_bucket", {**labels, "le": bucket}), 1)
                pipe.hincrbyfloat(HISTOGRAMS_KEY, _series(f"{name}_sum", labels), seconds)
                pipe.hincrby(HISTOGRAMS_KEY, _series(f"{name}_count", labels), 1)
                pipe.execute()
        except RedisError:
            log.warning("metric %s not recorded: Redis unavailable", name)

    def counters(self) -> dict[str, float]:
        raw = self.redis.hgetall(COUNTERS_KEY)
        return {_text(key): float(value) for key, value in raw.items()}

    def counter(self, name: str, **labels: object) -> float:
        value = self.redis.hget(COUNTERS_KEY, _series(name, labels))
        return float(value) if value is not None else 0.0

    def histograms(self) -> dict[str, float]:
        raw = self.redis.hgetall(HISTOGRAMS_KEY)
        return {_text(key): float(value) for key, value in raw.items()}


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key
