"""Simulator of the Blockpass KYC Connect Dashboard API for tests, benchmarks and local development."""

from sandbox.app import create_app
from sandbox.server import RunningServer, start_background
from sandbox.state import SandboxState

__all__ = ["RunningServer", "SandboxState", "create_app", "start_background"]
