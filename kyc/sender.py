"""Posting one signed event to one subscriber, and reading its answer."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

# Kept with each attempt so an operator can see what the receiver said.
RESPONSE_BODY_LIMIT = 4096
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Response:
    status_code: int | None
    duration_ms: float
    error: str | None = None
    body: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DestinationRefused(Exception):
    """The URL resolves to an address kyc-relay does not send to."""


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse loopback, private, link-local, shared (CGNAT) and reserved destinations.

    Checked on the resolved addresses, so a public name pointing inside is refused too.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("not an http(s) URL")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"name does not resolve ({exc.errno})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not is_public(address):
            raise DestinationRefused(f"resolves to a non-public address ({address})")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # is_global is False for private, loopback, link-local, 100.64/10 and reserved ranges.
    return address.is_global and not address.is_multicast


class Sender:
    def __init__(self, timeout: float, allow_private: bool, pool_size: int = 10) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": "kyc-relay", "Content-Type": "application/json"})

    def post(self, url: str, body: str, headers: dict[str, str]) -> Response:
        started = time.monotonic()
        try:
            check_destination(url, self.allow_private)
            # Redirects are not followed: a receiver could point us anywhere.
            answer = self.session.post(
                url,
                data=body.encode(),
                headers=headers,
                timeout=(CONNECT_TIMEOUT, self.timeout),
                allow_redirects=False,
                stream=True,
            )
        except DestinationRefused as exc:
            return Response(None, _ms(started), f"destination refused: {exc}")
        except requests.Timeout:
            return Response(None, _ms(started), "timed out")
        except requests.RequestException as exc:
            return Response(None, _ms(started), f"connection failed: {type(exc).__name__}")
        try:
            head = answer.raw.read(RESPONSE_BODY_LIMIT, decode_content=True) or b""
        except Exception:  # a broken body does not undo the status code already received
            head = b""
        finally:
            answer.close()
        return Response(answer.status_code, _ms(started), body=head.decode("utf-8", "replace"))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
