"""Counters and latency histograms kept in Redis, so every gunicorn worker and every
RQ worker adds to the same figures and any web process can serve them all (the
push-gateway pattern, with Redis as the gateway).

Each process adds up locally and flushes once a second, so measuring costs the
request or job it measures no Redis round trip. Label values are the service's
own vocabulary (outcomes, statuses, codes), never identifiers or identity data.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import weakref
from collections import defaultdict

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger("kyc.metrics")

COUNTERS_KEY = "kyc:metrics:counters"
HISTOGRAMS_KEY = "kyc:metrics:histograms"
# Seconds; spans a local webhook receiver to a slow Blockpass answer.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FLUSH_INTERVAL = 1.0
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.:/-]")


def series(name: str, labels: dict[str, object]) -> str:
    if not labels:
        return name
    inner = ",".join(
        f'{key}="{_LABEL_SAFE.sub("_", str(value))[:64]}"' for key, value in sorted(labels.items())
    )
    return f"{name}{{{inner}}}"


class Metrics:
    def __init__(self, redis: Redis, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.redis = redis
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._counts: dict[str, int] = defaultdict(int)
        self._histograms: dict[str, float] = defaultdict(float)
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        _instances.add(self)

    def incr(self, name: str, amount: int = 1, /, **labels: object) -> None:
        with self._lock:
            self._counts[series(name, labels)] += amount
        self._ensure_flusher()

    def observe(self, name: str, seconds: float, /, **labels: object) -> None:
        edge = next((str(edge) for edge in BUCKETS if seconds <= edge), "+Inf")
        with self._lock:
            self._histograms[series(f"{name}_bucket", {**labels, "le": edge})] += 1
            self._histograms[series(f"{name}_sum", labels)] += seconds
            self._histograms[series(f"{name}_count", labels)] += 1
        self._ensure_flusher()

    def flush(self, quiet: bool = False) -> None:
        with self._lock:
            counts, self._counts = self._counts, defaultdict(int)
            histograms, self._histograms = self._histograms, defaultdict(float)
        if not counts and not histograms:
            return
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for key, amount in counts.items():
                    pipe.hincrby(COUNTERS_KEY, key, int(amount))
                for key, value in histograms.items():
                    pipe.hincrbyfloat(HISTOGRAMS_KEY, key, value)
                pipe.execute()
        except RedisError:
            # Keep the figures for the next flush; metrics never break the work they measure.
            with self._lock:
                for key, amount in counts.items():
                    self._counts[key] += amount
                for key, value in histograms.items():
                    self._histograms[key] += value
            if not quiet:
                log.warning("metrics not flushed: Redis unavailable")

    def counter(self, name: str, **labels: object) -> float:
        value = self.redis.hget(COUNTERS_KEY, series(name, labels))
        return float(value) if value is not None else 0.0

    def stored(self) -> tuple[dict[str, float], dict[str, float]]:
        """Every process's flushed figures: (counters, histogram parts)."""
        counters = {_text(k): float(v) for k, v in self.redis.hgetall(COUNTERS_KEY).items()}
        histograms = {_text(k): float(v) for k, v in self.redis.hgetall(HISTOGRAMS_KEY).items()}
        return counters, histograms

    def close(self, quiet: bool = False) -> None:
        self._stop.set()
        self.flush(quiet=quiet)

    def _ensure_flusher(self) -> None:
        if self._flusher is not None and self._flusher.is_alive():
            return
        with self._lock:
            if self._flusher is not None and self._flusher.is_alive():
                return
            self._flusher = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
            self._flusher.start()
            atexit.register(self.flush, quiet=True)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()


_instances: weakref.WeakSet[Metrics] = weakref.WeakSet()


def close_all() -> None:
    """Flush and stop every Metrics of this process (tests start each case from a clean slate)."""
    for metrics in list(_instances):
        metrics.close(quiet=True)


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key
