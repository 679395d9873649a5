"""The pipeline's baseline: what one would write first with RQ.

One job per candidate, run by plain `rq worker` processes (RQ's usual worker, which forks a work
horse per job): fetch the candidate from the Blockpass API, then post its status to the subscriber.
No outbox, no coalescing, no signing, no retries: the least work that still relays a status.
"""

from __future__ import annotations

import sys
from typing import Any

import requests
from redis import Redis
from rq import Queue

from devstack.environment import REPO_ROOT

QUEUE = "bench-naive"
TIMEOUT = 10.0


def relay(ref_id: str, api_base: str, api_key: str, notify_url: str) -> str:
    """The job: GET the candidate, POST an event naming its status."""
    with requests.Session() as http:
        http.trust_env = False  # loopback only
        answer = http.get(f"{api_base}/refId/{ref_id}", headers={"Authorization": api_key}, timeout=TIMEOUT)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()["data"]
        status = str(data["status"])
        event = {
            "type": f"candidate.{status}",
            "data": {"refId": ref_id, "recordId": data.get("recordId"), "status": status},
        }
        http.post(notify_url, json=event, timeout=TIMEOUT).raise_for_status()
    return status


def queue(redis_url: str) -> Queue:
    return Queue(QUEUE, connection=Redis.from_url(redis_url))


def enqueue(target: Queue, ref_id: str, api_base: str, api_key: str, notify_url: str) -> None:
    target.enqueue(relay, ref_id, api_base, api_key, notify_url, job_timeout=60)


def worker_argv(redis_url: str) -> list[str]:
    """A plain `rq worker` on the baseline's queue (the default, forking Worker class)."""
    return [
        sys.executable,
        "-m",
        "rq.cli",
        "worker",
        "--url",
        redis_url,
        "--path",
        str(REPO_ROOT),
        QUEUE,
    ]
