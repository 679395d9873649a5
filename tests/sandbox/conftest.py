"""Fixtures: the simulator on a free loopback port, reached over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sandbox import RunningServer, SandboxState, create_app, start_background
from sandbox.testing import SandboxClient, WebhookReceiver, start_receiver


@dataclass
class Sandbox:
    server: RunningServer
    state: SandboxState
    client: SandboxClient


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    app = create_app(client_id="acme", api_keys={"full-key": "attributes_pictures"})
    with start_background(app) as server:
        client = SandboxClient(server.url, client_id="acme", api_key="full-key")
        yield Sandbox(server, app.extensions["sandbox"], client)
        client.http.close()


@pytest.fixture
def bp(sandbox: Sandbox) -> SandboxClient:
    return sandbox.client


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with start_receiver() as hook:
        yield hook


@pytest.fixture
def sandbox_state(sandbox: Sandbox) -> SandboxState:
    """The running simulator's state, for tests that drive it in-process."""
    return sandbox.state
