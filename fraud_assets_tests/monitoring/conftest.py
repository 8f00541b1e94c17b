"""Fixtures for the monitoring tests.

The service fixtures live in fraud_assets_tests.services.prometheus_stack so that other
test folders (a live end-to-end test, say) can import them the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fraud_assets_tests.services.http_recorder import RecordingServer
from fraud_assets_tests.services.prometheus_stack import (  # noqa: F401 - pytest fixtures
    alertmanager,
    prometheus,
    pushgateway,
    pushgateway_service,
)


@pytest.fixture
def slack_server() -> Iterator[RecordingServer]:
    """A stand-in for Slack's webhook endpoint on 127.0.0.1."""
    with RecordingServer() as server:
        yield server
