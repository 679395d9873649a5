"""One JSON line per log record on stdout, with the request or job it belongs to.

Messages are written free of identity data at the call site; the formatter adds
only what the process knows about itself (request id, job id), never arguments.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

# Functions that return the current request id or job id, registered by the web
# and worker processes (the domain knows neither Flask nor RQ).
_context_providers: list[Callable[[], dict[str, str]]] = []


def add_context_provider(provider: Callable[[], dict[str, str]]) -> None:
    if provider not in _context_providers:
        _context_providers.append(provider)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for provider in _context_providers:
            with contextlib.suppress(Exception):  # a log line is never lost to its context
                line.update(provider())
        if record.exc_info and record.exc_info[0] is not None:
            # The type and where it was raised; the message of a library error may quote input.
            line["error"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Werkzeug's and RQ's own handlers would print a second, plain line.
    for name in ("rq.worker", "rq.scheduler", "werkzeug"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
