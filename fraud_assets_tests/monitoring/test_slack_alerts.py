"""fraud_assets.core.monitoring.alerts against a local stand-in for Slack's webhook endpoint."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from fraud_assets.core.monitoring import alerts
from fraud_assets.core.monitoring.alerts import post_slack_message
from fraud_assets_tests.services.http_recorder import RecordingServer, Response
from fraud_assets_tests.services.prometheus_stack import free_port

WEBHOOK_PATH = "/services/T000/B000/SECRETTOKEN"


def test_posts_text_as_json(slack_server: RecordingServer) -> None:
    assert post_slack_message(slack_server.url + WEBHOOK_PATH, "Scoring done: 4 flagged") is True
    (request,) = slack_server.requests
    assert request.method == "POST"
    assert request.path == WEBHOOK_PATH
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json() == {"text": "Scoring done: 4 flagged"}


def test_posts_blocks_with_text_fallback(slack_server: RecordingServer) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Drift* on `V14`"}}]
    assert post_slack_message(slack_server.url + WEBHOOK_PATH, "Drift on V14", blocks=blocks)
    assert slack_server.requests[0].json() == {"text": "Drift on V14", "blocks": blocks}


def test_retries_after_a_server_error(slack_server: RecordingServer) -> None:
    slack_server.queue(500)
    assert post_slack_message(slack_server.url + WEBHOOK_PATH, "hello", backoff=0.01) is True
    assert len(slack_server.requests) == 2
    assert slack_server.requests[0].body == slack_server.requests[1].body


def test_honours_retry_after_on_rate_limit(slack_server: RecordingServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    # Only the alerts module's view of `time` is replaced; the stand-in server is untouched.
    monkeypatch.setattr(alerts, "time", SimpleNamespace(sleep=sleeps.append))
    slack_server.queue(Response(429, b"rate_limited", (("Retry-After", "0.2"),)))
    assert post_slack_message(slack_server.url + WEBHOOK_PATH, "hello", backoff=0.0) is True
    # With backoff=0 the only reason to wait is Slack's Retry-After.
    assert sleeps == [pytest.approx(0.2)]
    assert len(slack_server.requests) == 2


def test_gives_up_after_the_retries(slack_server: RecordingServer,
                                    caplog: pytest.LogCaptureFixture) -> None:
    slack_server.queue(503, 503, 503)
    with caplog.at_level(logging.WARNING, logger="fraud_assets.core.monitoring.alerts"):
        assert post_slack_message(slack_server.url + WEBHOOK_PATH, "hello", retries=2,
                                  backoff=0.01) is False
    assert len(slack_server.requests) == 3
    # The webhook URL is a credential and must not be logged.
    assert "SECRETTOKEN" not in caplog.text


def test_client_errors_are_not_retried(slack_server: RecordingServer) -> None:
    slack_server.queue(Response(400, b"invalid_payload"))
    assert post_slack_message(slack_server.url + WEBHOOK_PATH, "hello", backoff=0.01) is False
    assert len(slack_server.requests) == 1


@pytest.mark.parametrize("url", [None, ""])
def test_without_url_logs_and_returns_false(url: str | None,
                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fraud_assets.core.monitoring.alerts"):
        assert post_slack_message(url, "nobody listens") is False
    assert len(caplog.records) == 1


def test_connection_errors_are_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}"
    with caplog.at_level(logging.WARNING, logger="fraud_assets.core.monitoring.alerts"):
        assert post_slack_message(url, "hello", retries=1, backoff=0.01, timeout=1) is False
    assert "2 attempt" in caplog.text
    assert "SECRETTOKEN" not in caplog.text


def test_malformed_url_does_not_raise() -> None:
    assert post_slack_message("not a url", "hello", backoff=0.0) is False
