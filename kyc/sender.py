"""Posting one signed event to one subscriber, and reading its answer.

Destinations are checked where it counts: when the connection is made, on the
addresses the name resolved to, so a public name pointing inside (or changing
its answer between a check and the connect) is refused all the same.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util import connection as urllib3_connection

# Kept with each attempt so an operator can see what the receiver said.
RESPONSE_BODY_LIMIT = 4096
CONNECT_TIMEOUT = 5.0
# A receiver's Retry-After is honoured within these bounds (seconds).
MIN_RETRY_AFTER, MAX_RETRY_AFTER = 1.0, 6 * 3600.0
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Standard Webhooks receiver control: this answer header stops retries of the message.
ABORT_HEADER, ABORT_VALUE = "webhook-delivery", "abort-message"


@dataclass(frozen=True)
class Response:
    status_code: int | None
    duration_ms: float
    error: str | None = None
    body: str | None = None
    retry_after: float | None = None
    abort: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DestinationRefused(NewConnectionError):
    """The destination resolves to an address kyc-relay does not send to."""


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # is_global is False for private, loopback, link-local, 100.64/10 (shared) and reserved ranges.
    return address.is_global and not address.is_multicast


def vetted_addresses(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses `host` resolves to, or a refusal when any of them is not public."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for text in addresses:
            if not is_public(ipaddress.ip_address(text.split("%")[0])):
                raise ValueError(f"{host} resolves to a non-public address ({text})")
    return addresses


class _Guarded:
    """Connects only to vetted addresses: resolution and connection are one step."""

    allow_private = False

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        try:
            addresses = vetted_addresses(conn._dns_host, conn.port, self.allow_private)
        except ValueError as exc:
            raise DestinationRefused(conn, f"destination refused: {exc}") from None
        except socket.gaierror as exc:
            raise NewConnectionError(conn, f"name does not resolve ({exc.errno})") from None
        last: OSError | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except OSError as exc:
                last = exc
        raise NewConnectionError(conn, f"connection failed: {type(last).__name__}")


def _adapter(allow_private: bool, pool_size: int) -> HTTPAdapter:
    http_conn = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), {"allow_private": allow_private})
    https_conn = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), {"allow_private": allow_private})
    http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
    return adapter


class Sender:
    def __init__(self, timeout: float, allow_private: bool, pool_size: int = 32) -> None:
        self.timeout = timeout
        self.session = requests.Session()
        # Proxies from the environment would connect on our behalf, around the guard.
        self.session.trust_env = False
        adapter = _adapter(allow_private, pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": "kyc-relay", "Content-Type": "application/json"})

    def post(self, url: str, body: str, headers: dict[str, str]) -> Response:
        started = time.monotonic()
        if urlsplit(url).scheme not in ("http", "https"):
            return Response(None, _ms(started), "not an http(s) URL")
        try:
            # Redirects are not followed: a receiver could point us anywhere.
            answer = self.session.post(
                url,
                data=body.encode(),
                headers=headers,
                timeout=(CONNECT_TIMEOUT, self.timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            return Response(None, _ms(started), "timed out")
        except requests.ConnectionError as exc:
            return Response(None, _ms(started), _connection_error(exc))
        except requests.RequestException as exc:
            return Response(None, _ms(started), f"request failed: {type(exc).__name__}")
        try:
            head = answer.raw.read(RESPONSE_BODY_LIMIT, decode_content=True) or b""
        except Exception:  # a broken body does not undo the status code already received
            head = b""
        finally:
            answer.close()
        return Response(
            answer.status_code,
            _ms(started),
            body=head.decode("utf-8", "replace"),
            retry_after=_retry_after(answer) if answer.status_code in RETRY_AFTER_STATUSES else None,
            abort=answer.headers.get(ABORT_HEADER, "").strip().lower() == ABORT_VALUE,
        )


def _connection_error(exc: requests.ConnectionError) -> str:
    reason = exc.args[0] if exc.args else None
    cause = getattr(reason, "reason", reason)
    if isinstance(cause, NewConnectionError):
        # Our own wording (refused destination, unresolvable name), never the URL.
        message = str(cause).split(": ", 1)[-1]
        return message[:200]
    return f"connection failed: {type(cause).__name__ if cause else 'error'}"


def _retry_after(answer: requests.Response) -> float | None:
    value = answer.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:
        return None
    return min(max(seconds, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
