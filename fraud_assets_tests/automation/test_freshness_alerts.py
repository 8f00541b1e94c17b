"""Freshness: the daemon's own evaluation of our policies, and the sensor that tells Slack once
per transition."""

import asyncio
import time
from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time
from dagster._daemon.freshness import FreshnessDaemon

from fraud_assets.definitions import build_definitions
from fraud_assets.defs.freshness import build_freshness_sensor
from fraud_assets.defs.resources import SlackAlerts
from fraud_assets_tests.services.http_recorder import Response


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def report(instance, asset: str, previous: str, new: str) -> None:
    """A state change recorded as the freshness daemon records it."""
    instance.report_runless_asset_event(
        FreshnessStateChange(
            key=dg.AssetKey(asset),
            previous_state=FreshnessState(previous),
            new_state=FreshnessState(new),
            state_change_timestamp=time.time(),
        )
    )


def tick(instance, webhook_url: str | None, cursor: str | None = None):
    sensor = build_freshness_sensor(running=False)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"slack": SlackAlerts(webhook_url=webhook_url)}
    ) as context:
        result = sensor.evaluate_tick(context)
    assert not result.run_requests
    return result.cursor


def texts(server) -> list[str]:
    return [request.json()["text"] for request in server.requests]


def test_a_stale_asset_is_posted_once(instance, slack_server):
    report(instance, "daily_predictions", "UNKNOWN", "PASS")
    cursor = tick(instance, slack_server.url)
    assert texts(slack_server) == []

    report(instance, "daily_predictions", "PASS", "FAIL")
    cursor = tick(instance, slack_server.url, cursor)
    (text,) = texts(slack_server)
    assert "`daily_predictions` is stale" in text and "between 02:00 and 04:00 UTC" in text
    assert "last materialised never" in text

    for _ in range(2):  # later ticks with nothing new say nothing
        cursor = tick(instance, slack_server.url, cursor)
    assert len(texts(slack_server)) == 1


def test_recovery_is_posted_and_a_new_lapse_is_posted_again(instance, slack_server):
    report(instance, "drift_statistics", "PASS", "FAIL")
    cursor = tick(instance, slack_server.url)
    report(instance, "drift_statistics", "FAIL", "PASS")
    cursor = tick(instance, slack_server.url, cursor)
    # Fresh, then stale again, between two ticks: still a new transition to tell.
    report(instance, "drift_statistics", "PASS", "FAIL")
    report(instance, "drift_statistics", "FAIL", "PASS")
    time.sleep(0.01)
    report(instance, "drift_statistics", "PASS", "FAIL")
    tick(instance, slack_server.url, cursor)
    first, second, third = texts(slack_server)
    assert "`drift_statistics` is stale" in first
    assert "`drift_statistics` is fresh again" in second
    assert "`drift_statistics` is stale" in third


def test_an_alert_slack_refused_is_posted_on_the_next_tick(instance, slack_server):
    slack_server.queue(Response(status=400, body=b"invalid_payload"))
    report(instance, "realized_performance", "PASS", "FAIL")
    cursor = tick(instance, slack_server.url)
    assert len(slack_server.requests) == 1  # refused
    tick(instance, slack_server.url, cursor)
    assert len(slack_server.requests) == 2
    assert "`realized_performance` is stale" in texts(slack_server)[1]
    assert "between 02:00 and 07:00 UTC" in texts(slack_server)[1]


def test_without_a_webhook_the_transition_is_logged_and_handled(instance, slack_server):
    report(instance, "daily_predictions", "PASS", "FAIL")
    cursor = tick(instance, None)
    # Handled: a webhook configured later does not replay the old transition.
    tick(instance, slack_server.url, cursor)
    assert texts(slack_server) == []


def _evaluate_like_the_daemon(instance, asset: str) -> None:
    node = build_definitions("local").resolve_asset_graph().get(dg.AssetKey(asset))
    asyncio.run(FreshnessDaemon()._evaluate_asset(context=LoadingContextForTest(instance), node=node))


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def test_daemon_verdicts_on_our_policy_reach_slack(instance, slack_server):
    """The freshness daemon's own code evaluates `daily_predictions`' policy; the sensor tells
    Slack what it recorded."""
    with freeze_time(_at(4, 2, 30)):  # the 02:00 cut-off run
        instance.report_runless_asset_event(
            dg.AssetMaterialization("daily_predictions", partition="2025-03-03")
        )
    with freeze_time(_at(4, 4, 30)):
        _evaluate_like_the_daemon(instance, "daily_predictions")
        cursor = tick(instance, slack_server.url)
    assert texts(slack_server) == []
    assert instance.get_freshness_state_records([dg.AssetKey("daily_predictions")])[
        dg.AssetKey("daily_predictions")
    ].freshness_state == FreshnessState.PASS

    with freeze_time(_at(5, 3, 59)):  # before the next deadline: still fresh
        _evaluate_like_the_daemon(instance, "daily_predictions")
    with freeze_time(_at(5, 4, 1)):  # the next day's run never came
        _evaluate_like_the_daemon(instance, "daily_predictions")
        cursor = tick(instance, slack_server.url, cursor)
    (text,) = texts(slack_server)
    assert "`daily_predictions` is stale" in text and "2025-03-04 02:30 UTC" in text

    with freeze_time(_at(5, 4, 20)):  # a late run: fresh again
        instance.report_runless_asset_event(
            dg.AssetMaterialization("daily_predictions", partition="2025-03-04")
        )
        _evaluate_like_the_daemon(instance, "daily_predictions")
        tick(instance, slack_server.url, cursor)
    assert "fresh again" in texts(slack_server)[1] and "2025-03-05 04:20 UTC" in texts(slack_server)[1]
