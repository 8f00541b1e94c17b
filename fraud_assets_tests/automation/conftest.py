from fraud_assets_tests.graph.conftest import instance, project  # noqa: F401 - fixtures
from fraud_assets_tests.services.http_recorder import slack_server  # noqa: F401 - fixture
from fraud_assets_tests.services.prometheus_stack import (  # noqa: F401 - fixtures
    prometheus,
    pushgateway,
    pushgateway_service,
)
