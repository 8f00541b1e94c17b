"""Pushgateway -> Prometheus -> rules/dashboards, and Alertmanager -> Slack, all live.

Prometheus here scrapes the test Pushgateway every second with the production scrape
settings (honor_labels) and evaluates the repository's rule files every second.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest

from fraud_assets.core.monitoring.telemetry import (
    push_drift_metrics,
    push_realized_performance,
    push_scoring_metrics,
    push_training_metrics,
)
from fraud_assets_tests.services.prometheus_stack import (
    Service,
    dashboard_query_failures,
    http_json,
    query,
    wait_for,
    wait_for_series,
)

pytestmark = pytest.mark.integration



def push_everything(gateway: Service, rows: int) -> None:
    assert push_scoring_metrics(gateway.url, rows=rows, flagged=3, seconds=1.5,
                                model_version="m-live")
    assert push_training_metrics(gateway.url, auprc=0.8, roc_auc=0.97, threshold=0.4,
                                 seconds=60.0, model_version="m-live", gate_passed=True,
                                 production_version="m-live")
    assert push_drift_metrics(
        gateway.url,
        psi={**{f"V{i}": 0.02 for i in range(1, 29)}, "Amount": 0.05, "score": 0.12},
        wasserstein={**{f"V{i}": 0.01 for i in range(1, 29)}, "Amount": 0.02},
        drift_share=0.0, drift_detected=False, seconds=2.0,
    )
    for role in ("production", "challenger"):
        assert push_realized_performance(
            gateway.url, role=role, model_version="m-live", day="2024-01-05", mature=True,
            rows=10_000, frauds=20, alerts=25, auprc=0.7, precision=0.64, recall=0.8,
            cost=150.0, known_fraud_share=0.97,
        )
    assert push_scoring_metrics(gateway.url, rows=0, flagged=0, seconds=0,
                                model_version="m-live", succeeded=False)


def test_prometheus_scrapes_a_pushed_metric(pushgateway: Service, prometheus: Service) -> None:
    assert push_scoring_metrics(pushgateway.url, rows=4321, flagged=2, seconds=1.0,
                                model_version="m-live")
    result = wait_for_series(prometheus, 'fraud_scoring_rows{job="fraud_scoring"} == 4321')
    (sample,) = result
    # honor_labels kept the pushed job; the gateway's own instance did not leak in.
    assert sample["metric"] == {"__name__": "fraud_scoring_rows", "job": "fraud_scoring"}
    (info,) = query(prometheus, "fraud_model_info")
    assert info["metric"]["model_version"] == "m-live"


def test_prometheus_counts_each_scoring_run_once(pushgateway: Service, prometheus: Service) -> None:
    # Earlier tests' runs are already in Prometheus: count only from a rule evaluation that
    # saw the wiped gateway, so every earlier run has been counted before the window opens.
    wait_for(
        lambda: not query(prometheus, "fraud_scoring_last_success_timestamp_seconds")
        and not query(prometheus,
                      "job:fraud_scoring_last_success_timestamp_seconds:previous_evaluation"),
        what="an evaluation of the wiped gateway",
    )
    since = time.time()

    def counted(what: str) -> float | None:
        # Millisecond window: a whole-second one could reach back before `since`.
        window = max(1, int((time.time() - since) * 1000))
        result = query(prometheus, f"sum_over_time(job:fraud_scoring_{what}:first_seen[{window}ms])")
        return float(result[0]["value"][1]) if result else None

    assert push_scoring_metrics(pushgateway.url, rows=700, flagged=7, seconds=1.0,
                                model_version="m-live")
    wait_for(lambda: counted("rows") == 700, what="the first run to be counted")
    # Same figures again: still a new run, told apart by its success time.
    assert push_scoring_metrics(pushgateway.url, rows=700, flagged=7, seconds=1.0,
                                model_version="m-live")
    wait_for(lambda: counted("runs") == 2, what="the second run to be counted")
    assert counted("rows") == 1400
    assert counted("flagged") == 14
    # Held by the gateway and seen again at every later evaluation, the runs are not
    # counted again.
    second_counted = time.time()

    def evaluations_since() -> float:
        window = max(1, int(time.time() - second_counted))
        result = query(prometheus, f"count_over_time(job:fraud_scoring_runs:first_seen[{window}s])")
        return float(result[0]["value"][1]) if result else 0.0

    wait_for(lambda: evaluations_since() >= 3, what="three more rule evaluations")
    assert counted("rows") == 1400


def test_dashboard_queries_run_against_pushed_metrics(
    pushgateway: Service, prometheus: Service
) -> None:
    push_everything(pushgateway, rows=777)
    wait_for_series(prometheus, "fraud_scoring_rows == 777")
    wait_for_series(prometheus, "fraud_drift_psi")
    wait_for_series(prometheus, "fraud_scoring_last_failure_timestamp_seconds")
    wait_for_series(prometheus, "fraud_realized_precision")
    wait_for_series(prometheus, "job:fraud_scoring_rows:sum_1d")

    checked, failures = dashboard_query_failures(prometheus)
    assert checked > 20
    assert not failures, "\n".join(failures)


def test_rules_evaluate_without_errors_on_real_series(
    pushgateway: Service, prometheus: Service
) -> None:
    push_everything(pushgateway, rows=555)
    wait_for_series(prometheus, "fraud_scoring_rows == 555")
    pushed_at = time.time()

    def evaluated_after_push() -> list[dict] | None:
        groups = http_json(prometheus.url + "/api/v1/rules")["data"]["groups"]
        rules = [rule for g in groups for rule in g["rules"]]
        stamps = [rule.get("lastEvaluation", "") for rule in rules]
        if not rules or any(s.startswith("0001") for s in stamps):
            return None
        oldest_group_eval = min(_parse_rfc3339(g["lastEvaluation"]) for g in groups)
        return rules if oldest_group_eval > pushed_at + 1 else None

    rules = wait_for(evaluated_after_push, timeout=15, what="a rule evaluation after the push")
    assert len(rules) >= 10
    broken = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
    assert not broken, broken
    # The failure pushed last is newer than the success: the failed-run alert is pending.
    alerts = wait_for(
        lambda: [a for a in http_json(prometheus.url + "/api/v1/alerts")["data"]["alerts"]
                 if a["labels"]["alertname"] == "FraudBatchJobFailed"],
        timeout=10, what="FraudBatchJobFailed pending",
    )
    assert alerts[0]["labels"]["job"] == "fraud_scoring"
    assert alerts[0]["state"] in {"pending", "firing"}


def _parse_rfc3339(text: str) -> float:
    # Prometheus reports nanoseconds; datetime only takes microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("severity", "channel"),
    [("critical", "#fraud-alerts-critical"), ("warning", "#fraud-alerts")],
)
def test_alertmanager_sends_to_the_slack_channel_of_each_severity(
    alertmanager: Service, severity: str, channel: str
) -> None:
    slack = alertmanager.extra["slack"]
    already = len(slack.requests)
    alert = [{
        # A job of its own: a critical alert mutes warnings of the same job.
        "labels": {"alertname": f"LiveTest{severity.title()}", "severity": severity,
                   "job": f"live-{severity}", "component": "scoring"},
        "annotations": {"summary": f"live {severity} test", "description": "from pytest"},
    }]
    http_json(alertmanager.url + "/api/v2/alerts", data=json.dumps(alert).encode(), method="POST")
    requests = slack.wait_for_requests(already + 1, timeout=15)
    bodies = [r.json() for r in requests[already:]]
    mine = [b for b in bodies if f"LiveTest{severity.title()}" in json.dumps(b)]
    assert mine, bodies
    # The URL came from slack_api_url_file: the request reached the recorder's path.
    assert requests[already].path == "/services/T000/B000/XXXX"
    assert mine[0]["channel"] == channel
    attachment = mine[0]["attachments"][0]
    assert f"live {severity} test" in attachment["text"]


def test_alertmanager_mutes_warnings_of_a_job_with_a_critical_alert(
    alertmanager: Service,
) -> None:
    alerts = [
        {"labels": {"alertname": "LiveInhibitCritical", "severity": "critical",
                    "job": "live-inhibit"}},
        {"labels": {"alertname": "LiveInhibitWarning", "severity": "warning",
                    "job": "live-inhibit"}},
        {"labels": {"alertname": "LiveInhibitOtherJob", "severity": "warning",
                    "job": "live-other"}},
    ]
    http_json(alertmanager.url + "/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST")

    def states() -> dict[str, dict] | None:
        found = {
            a["labels"]["alertname"]: a["status"]
            for a in http_json(alertmanager.url + "/api/v2/alerts")
            if a["labels"]["alertname"].startswith("LiveInhibit")
        }
        return found if found.get("LiveInhibitWarning", {}).get("inhibitedBy") else None

    found = wait_for(states, timeout=10, what="the warning to be inhibited")
    assert found["LiveInhibitWarning"]["state"] == "suppressed"
    assert not found["LiveInhibitCritical"]["inhibitedBy"]
    assert not found["LiveInhibitOtherJob"]["inhibitedBy"]
