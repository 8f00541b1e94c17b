from collections.abc import Iterator

import pytest

from fraud_assets_tests.graph.conftest import instance, project  # noqa: F401 - fixtures
from fraud_assets_tests.services.http_recorder import RecordingServer
from fraud_assets_tests.services.prometheus_stack import (  # noqa: F401 - fixtures
    prometheus,
    pushgateway,
    pushgateway_service,
)


@pytest.fixture
def slack_server() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server
