"""examples/widget.html in real headless Chromium: the page, the sandbox's stand-in widget and kyc-relay
each on an origin of its own, so the callback has to pass kyc-relay's CORS check to count."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask, Response, send_from_directory
from redis import Redis

from kyc.config import Settings
from sandbox import RunningServer, start_background
from sandbox.widget import SCRIPT_PATH
from service import create_app as create_service

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from playwright.sync_api import BrowserContext, Page

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
TIMEOUT_MS = 15_000
# The page's final states (examples/widget.html sets data-state on #kyc-status).
SETTLED = '#kyc-status[data-state="sent"], #kyc-status[data-state="failed"]'
LOOPBACK = {"127.0.0.1", "localhost"}


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine; in CI (CI set) a missing browser is a failure, not a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def chromium_path() -> str:
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not path:
        unavailable("Chromium is not installed: apt-get install -y --no-install-recommends chromium")
    return path


@dataclass
class Recorder:
    """Every request that reaches the relay's callback route: method and Origin, preflights included."""

    app: WSGIApplication
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/v1/callbacks":
            with self.lock:
                self.seen.append((environ["REQUEST_METHOD"], environ.get("HTTP_ORIGIN")))
        return self.app(environ, start_response)

    def methods(self) -> list[str]:
        with self.lock:
            return [method for method, _ in self.seen]

    def origins(self) -> set[str | None]:
        with self.lock:
            return {origin for _, origin in self.seen}


@dataclass
class Relay:
    url: str
    recorder: Recorder


@dataclass
class Pages:
    """The example page served twice: from an origin the relay allows, and from one it does not."""

    allowed: str
    other: str


def static_site(directory: Path) -> Flask:
    site = Flask("examples")

    @site.get("/<path:name>")
    def file(name: str) -> Response:
        return send_from_directory(directory, name, max_age=0)

    return site


@pytest.fixture
def pages() -> Iterator[Pages]:
    servers: list[RunningServer] = [start_background(static_site(EXAMPLES)) for _ in range(2)]
    yield Pages(allowed=servers[0].url, other=servers[1].url)
    for server in servers:
        server.stop()


@pytest.fixture
def relay(settings: Settings, redis: Redis, pages: Pages) -> Iterator[Relay]:
    """kyc-relay's web app, allowing only the first page origin; a different origin than the page's."""
    app = create_service(replace(settings, cors_origins=(pages.allowed,)), redis=redis)
    recorder = Recorder(app)
    with start_background(recorder) as server:
        yield Relay(server.url, recorder)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Debian's Chromium through Playwright, with a new empty profile. Never a downloaded browser."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (it is in requirements-dev.lock)")
    requested: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=30_000,
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.on("request", lambda request: requested.append(request.url))
        try:
            yield context
        finally:
            context.close()
    strangers = sorted({url for url in requested if urlsplit(url).hostname not in LOOPBACK})
    assert not strangers, f"the page reached beyond loopback: {strangers}"


def page_url(origin: str, relay: Relay, sandbox: Any, client_id: str, ref_id: str) -> str:
    query = urlencode(
        {"relay": relay.url, "widget": sandbox.url + SCRIPT_PATH, "clientId": client_id, "refId": ref_id}
    )
    return f"{origin}/widget.html?{query}"


def complete_widget(page: Page, url: str, screenshot: Path) -> str:
    """Open the page, go through the stand-in widget, return the page's final state."""
    page.goto(url)
    page.wait_for_selector('#kyc-status[data-state="ready"]')
    page.get_by_role("button", name="Verify with Blockpass").click()
    dialog = page.get_by_role("dialog", name="Blockpass sandbox")
    dialog.wait_for()
    page.screenshot(path=str(screenshot.with_suffix(".dialog.png")))
    dialog.get_by_role("button", name="Submit").click()
    page.wait_for_selector(SETTLED)
    page.screenshot(path=str(screenshot))
    state = page.get_attribute("#kyc-status", "data-state")
    return f"{state}: {page.text_content('#kyc-status')}"


def widget_events(page: Page) -> list[str]:
    return [text.split(" ", 1)[0] for text in page.locator("#kyc-events li").all_text_contents()]


def waiting_event_for(receiver: Any, ref_id: str) -> Callable[[], bool]:
    def arrived() -> bool:
        return any(
            item.payload["type"] == "candidate.waiting" and item.payload["data"]["refId"] == ref_id
            for item in list(receiver.received)
        )

    return arrived


def test_widget_success_reaches_the_relay_through_cors_and_the_candidate_is_synced(
    browser: BrowserContext,
    pages: Pages,
    relay: Relay,
    sandbox: Any,
    receiver: Any,
    settings: Settings,
    drain: Any,
    tmp_path: Path,
) -> None:
    ref_id = f"shopper-{uuid.uuid4().hex[:12]}"
    page = browser.new_page()
    url = page_url(pages.allowed, relay, sandbox, settings.blockpass_client_id, ref_id)

    outcome = complete_widget(page, url, tmp_path / "allowed.png")

    assert outcome.startswith("sent:"), outcome
    assert widget_events(page) == ["KYCConnectLoad", "KYCConnectData", "KYCConnectSuccess", "KYCConnectClose"]
    candidate = sandbox.state.get(ref_id)
    assert candidate.status == "waiting"
    data_event = page.locator("#kyc-events li").nth(1).text_content() or ""
    assert ref_id in data_event and candidate.blockpass_id in data_event
    # A JSON body needs the browser to ask first: the preflight, then the callback, both from the page.
    assert relay.recorder.methods() == ["OPTIONS", "POST"]
    assert relay.recorder.origins() == {pages.allowed}

    drain(until=waiting_event_for(receiver, ref_id))
    [event] = [item.payload for item in receiver.received]
    assert event["type"] == "candidate.waiting"
    assert event["data"]["refId"] == ref_id
    assert event["data"]["recordId"] == candidate.record_id
    assert event["data"]["blockPassID"] == candidate.blockpass_id


def test_a_page_on_an_origin_the_relay_does_not_allow_cannot_deliver_the_callback(
    browser: BrowserContext,
    pages: Pages,
    relay: Relay,
    sandbox: Any,
    receiver: Any,
    settings: Settings,
    drain: Any,
    tmp_path: Path,
) -> None:
    ref_id = f"stranger-{uuid.uuid4().hex[:12]}"
    page = browser.new_page()
    url = page_url(pages.other, relay, sandbox, settings.blockpass_client_id, ref_id)

    outcome = complete_widget(page, url, tmp_path / "refused.png")

    # The widget did its part: the sandbox has the submission and the page heard KYCConnectSuccess.
    assert sandbox.state.get(ref_id).status == "waiting"
    assert "KYCConnectSuccess" in widget_events(page)
    # The browser asked, the relay did not allow this origin, so the POST itself was never sent.
    assert outcome.startswith("failed:"), outcome
    methods = relay.recorder.methods()
    assert methods and set(methods) == {"OPTIONS"}, methods
    assert relay.recorder.origins() == {pages.other}

    drain()
    assert receiver.received == []
    assert not [call for call in sandbox.bp.calls() if ref_id in call["path"]]


def test_sandbox_serves_the_widget_and_opens_only_the_widget_routes_to_other_origins(sandbox: Any) -> None:
    http = sandbox.bp.http
    script = http.get(sandbox.url + SCRIPT_PATH, timeout=5)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "window.BlockpassKYCConnect = BlockpassKYCConnect" in script.text

    page = {"Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "POST"}
    for path in ("/_sandbox/candidates", "/_sandbox/candidates/user-1/status"):
        preflight = http.options(sandbox.url + path, headers=page, timeout=5)
        assert preflight.headers.get("Access-Control-Allow-Origin") == "*", path
        assert preflight.headers.get("Access-Control-Allow-Headers") == "Content-Type", path
    created = http.post(
        sandbox.url + "/_sandbox/candidates", json={"refId": "user-1"}, headers=page, timeout=5
    )
    assert created.status_code == 201 and created.headers["Access-Control-Allow-Origin"] == "*"
    again = http.post(sandbox.url + "/_sandbox/candidates", json={"refId": "user-1"}, headers=page, timeout=5)
    assert again.status_code == 409 and again.headers["Access-Control-Allow-Origin"] == "*"
    for path in ("/_sandbox/reset", "/_sandbox/faults", "/_sandbox/candidates/user-1"):
        assert (
            "Access-Control-Allow-Origin"
            not in http.options(sandbox.url + path, headers=page, timeout=5).headers
        )
