"""Simulated time and Blockpass-looking identifiers."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta


def iso_ms(moment: datetime) -> str:
    """Blockpass's date format: UTC, millisecond precision, trailing Z ("2018-11-12T10:49:17.973Z")."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def object_id(at: datetime) -> str:
    """24 hex chars laid out like a MongoDB ObjectId (4-byte seconds + 8 random bytes)."""
    return f"{int(at.timestamp()) & 0xFFFFFFFF:08x}" + os.urandom(8).hex()


class Clock:
    """Real UTC now plus an adjustable offset, so benchmarks can simulate days passing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def now_iso(self) -> str:
        return iso_ms(self.now())

    @staticmethod
    def sleep(seconds: float) -> None:
        # Simulated latency is real wall time: the offset only moves the dates shown.
        if seconds > 0:
            time.sleep(seconds)
