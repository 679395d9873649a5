"""The /_sandbox control API: stale replays, faults, latency, call log, clock, reset."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
import requests
from flask import Flask

from sandbox import SandboxState, create_app, start_background
from sandbox.testing import SandboxClient, loopback_session


def test_stale_replays_an_earlier_snapshot_once(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.move("u", "waiting")
    bp.move("u", "inreview")
    bp.move("u", "approved")
    assert bp.stale("u", 1) == {"version": 1, "versions": 4}
    assert bp.api("/refId/u").json()["data"]["status"] == "waiting"
    assert bp.api("/refId/u").json()["data"]["status"] == "approved"
    bp.stale("u", 0)
    created = bp.api("/refId/u").json()["data"]
    assert created["status"] == "incomplete" and "waitingDate" not in created
    assert bp.control("POST", "/candidates/u/stale", {"version": 9}).status_code == 400


def test_stale_applies_to_the_record_id_route_and_not_to_lists(bp: SandboxClient) -> None:
    record_id = bp.create(refId="u")["recordId"]
    bp.move("u", "waiting")
    bp.stale(record_id, 0)
    assert bp.api("/applicants").json()["data"]["records"][0]["status"] == "waiting"
    assert bp.api(f"/recordId/{record_id}").json()["data"]["status"] == "incomplete"
    assert bp.api(f"/recordId/{record_id}").json()["data"]["status"] == "waiting"


def test_429_fault_carries_retry_after_and_counts_down(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.fault(status=429, times=2, retryAfter=3)
    for _ in range(2):
        response = bp.api("/refId/u")
        assert response.status_code == 429
        assert response.json() == {
            "status": "error",
            "message": "Too many requests",
            "code": 429,
            "data": {},
            "extra": {"retryAfter": 3},
        }
    assert bp.api("/refId/u").status_code == 200


def test_faults_queue_in_order_and_skip_control_calls(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.fault(status=500)
    bp.fault(status=503, times=1)
    bp.create(refId="v")  # control calls do not consume faults
    first, second, third = (bp.api("/refId/u") for _ in range(3))
    assert first.status_code == 500 and first.json()["code"] == 500 and "extra" not in first.json()
    assert second.status_code == 503
    assert third.status_code == 200


def test_fault_with_auth_status_and_clearing(bp: SandboxClient) -> None:
    bp.fault(status=401, times=5)
    assert bp.api("/applicants").status_code == 401
    assert len(bp.control("GET", "/faults").json()["faults"]) == 1
    bp.clear_faults()
    assert bp.api("/applicants").status_code == 200
    assert bp.control("POST", "/faults", {"status": 418}).status_code == 400
    assert bp.control("POST", "/faults", {"times": 1}).status_code == 400


def test_delay_fault_makes_a_client_time_out(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.fault(delay=0.6)
    with pytest.raises(requests.Timeout):
        bp.http.get(f"{bp.base}/refId/u", headers={"Authorization": bp.api_key}, timeout=0.2)
    assert bp.api("/refId/u").status_code == 200


def test_latency_slows_every_api_call_but_not_control(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.set_latency(0.15)
    started = time.perf_counter()
    assert bp.api("/refId/u").status_code == 200
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    bp.control("GET", "/calls")
    assert time.perf_counter() - started < 0.15
    assert bp.control("GET", "/latency").json() == {"seconds": 0.15}
    bp.set_latency(0)


def test_call_log_records_api_calls_only(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.api("/refId/u")
    bp.api("/refId/missing")
    bp.api("/applicants/waiting", skip=0, limit=5)
    body = bp.control("GET", "/calls").json()
    assert body["count"] == 3
    assert [(c["method"], c["status"]) for c in body["calls"]] == [("GET", 200), ("GET", 404), ("GET", 200)]
    assert body["calls"][0]["path"] == "/kyc/1.0/connect/acme/refId/u"
    assert body["calls"][2]["path"] == "/kyc/1.0/connect/acme/applicants/waiting?skip=0&limit=5"
    assert body["calls"][0]["at"].endswith("Z")
    bp.clear_calls()
    assert bp.calls() == []


def test_clock_advance_moves_dates(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.advance_clock(3 * 86400)
    bp.move("u", "waiting")
    waiting = datetime.fromisoformat(bp.api("/refId/u").json()["data"]["waitingDate"])
    now = datetime.now(waiting.tzinfo)
    assert timedelta(days=2, hours=23) < waiting - now < timedelta(days=3, hours=1)
    assert bp.control("GET", "/clock").json()["offset"] == 3 * 86400


def test_reset_clears_everything(bp: SandboxClient) -> None:
    bp.create(refId="u")
    bp.fault(status=500, times=3)
    bp.set_latency(0.01)
    bp.advance_clock(100)
    bp.reset()
    assert bp.control("GET", "/clock").json()["offset"] == 0
    assert bp.control("GET", "/latency").json() == {"seconds": 0.0}
    assert bp.api("/applicants").json()["data"]["total"] == 0
    assert bp.calls()[-1]["status"] == 200


def test_state_can_be_driven_in_process(bp: SandboxClient, sandbox_state: SandboxState) -> None:
    candidate = sandbox_state.create(ref_id="direct", status="approved")
    assert candidate.submit_count == 1
    data = bp.api("/refId/direct").json()["data"]
    assert data["recordId"] == candidate.record_id and data["status"] == "approved"


def test_control_rejects_bad_input(bp: SandboxClient) -> None:
    assert bp.control("POST", "/candidates", {"status": "nope"}).status_code == 400
    assert bp.control("POST", "/candidates", ["not", "an", "object"]).status_code == 400
    assert bp.control("POST", "/candidates/none/status", {"status": "waiting"}).status_code == 404
    assert bp.control("PUT", "/latency", {"seconds": -1}).status_code == 400
    assert bp.control("POST", "/clock", {"advance": "soon"}).status_code == 400


def test_start_background_serves_any_wsgi_app_and_stops() -> None:
    app = Flask("echo")
    app.add_url_rule("/", "root", lambda: "hi")
    session = loopback_session()
    with start_background(app) as server:
        assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
        assert session.get(server.url, timeout=5).text == "hi"
    with pytest.raises(requests.ConnectionError):
        session.get(server.url, timeout=1)
    server.stop()  # stopping twice is harmless


def test_default_keys_and_fixed_keys() -> None:
    app = create_app()
    with start_background(app) as server:
        client = SandboxClient(server.url)
        client.create(refId="u")
        assert "selfie" in client.api("/refId/u").json()["data"]["identities"]
        assert "identities" not in client.api("/refId/u", key="sandbox-metadata-key").json()["data"]
        assert client.api("/refId/u", key="sandbox-attributes-key").status_code == 200
    with pytest.raises(ValueError):
        create_app(api_keys={"k": "everything"})
