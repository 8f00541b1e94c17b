"""Fixtures for the monitoring tests.

The service fixtures live in fraud_assets_tests.services.prometheus_stack so that other
test folders (a live end-to-end test, say) can import them the same way.
"""

from __future__ import annotations

from fraud_assets_tests.services.http_recorder import slack_server  # noqa: F401 - fixture
from fraud_assets_tests.services.prometheus_stack import (  # noqa: F401 - pytest fixtures
    alertmanager,
    prometheus,
    pushgateway,
    pushgateway_service,
)
