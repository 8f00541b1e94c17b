"""fraud_assets.core.monitoring.telemetry against a real Pushgateway on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from fraud_assets.core.monitoring import telemetry
from fraud_assets.core.monitoring.telemetry import (
    push_drift_metrics,
    push_realized_performance,
    push_scoring_metrics,
    push_training_metrics,
)
from fraud_assets.core.monitoring.telemetry.families import MAX_FEATURE_LABELS
from fraud_assets_tests.services.http_recorder import RecordingServer, Response
from fraud_assets_tests.services.prometheus_stack import (
    Service,
    free_port,
    pushgateway_groups,
)

pytestmark = pytest.mark.integration

FEATURES = [*(f"V{i}" for i in range(1, 29)), "Amount", "score"]
# Written by the gateway itself into every group.
GATEWAY_OWN = {"push_time_seconds", "push_failure_time_seconds"}


def group(gateway: Service, job: str) -> dict[str, Any] | None:
    for entry in pushgateway_groups(gateway):
        if entry["labels"] == {"job": job}:
            return entry
    return None


def metric_names(entry: dict[str, Any]) -> set[str]:
    return {k for k, v in entry.items() if isinstance(v, dict) and "metrics" in v} - GATEWAY_OWN


def own_labels(entry: dict[str, Any], metric: dict[str, Any]) -> dict[str, str]:
    """A series' labels without those every series of its group carries."""
    shared = {"instance", *entry["labels"]}
    return {k: v for k, v in metric["labels"].items() if k not in shared}


def value(entry: dict[str, Any], name: str, **labels: str) -> float:
    for metric in entry[name]["metrics"]:
        if own_labels(entry, metric) == labels:
            return float(metric["value"])
    raise KeyError(f"{name}{labels} not in group")


def series_labels(entry: dict[str, Any], name: str) -> list[dict[str, str]]:
    return [own_labels(entry, m) for m in entry[name]["metrics"]]


def scoring(gateway: Service, **overrides: Any) -> bool:
    args: dict[str, Any] = dict(rows=1000, flagged=4, seconds=2.5, model_version="m-1")
    args.update(overrides)
    return push_scoring_metrics(gateway.url, **args)


# ---------------------------------------------------------------------------- scoring


def test_scoring_push_lands_in_one_job_group(pushgateway: Service) -> None:
    before = time.time()
    assert scoring(pushgateway) is True
    groups = pushgateway_groups(pushgateway)
    # Grouping key {job} only: no instance/run/partition groups piling up.
    assert [g["labels"] for g in groups] == [{"job": "fraud_scoring"}]
    entry = groups[0]
    assert metric_names(entry) == {
        "fraud_scoring_rows", "fraud_scoring_flagged", "fraud_scoring_flagged_ratio",
        "fraud_scoring_duration_seconds", "fraud_model_info",
        "fraud_scoring_last_success_timestamp_seconds",
    }
    # Figures of this run only: totals across runs are Prometheus' job.
    assert {entry[name]["type"] for name in metric_names(entry)} == {"GAUGE"}
    assert value(entry, "fraud_scoring_rows") == 1000
    assert value(entry, "fraud_scoring_flagged") == 4
    assert value(entry, "fraud_scoring_flagged_ratio") == pytest.approx(0.004)
    assert value(entry, "fraud_scoring_duration_seconds") == 2.5
    assert value(entry, "fraud_model_info", model_version="m-1", role="scoring") == 1
    stamp = value(entry, "fraud_scoring_last_success_timestamp_seconds")
    assert before - 1 <= stamp <= time.time() + 1


def test_each_run_pushes_its_own_figures_not_a_sum(pushgateway: Service) -> None:
    assert scoring(pushgateway, rows=1000, flagged=4)
    first = value(group(pushgateway, "fraud_scoring"),
                  "fraud_scoring_last_success_timestamp_seconds")
    assert scoring(pushgateway, rows=250, flagged=1)
    entry = group(pushgateway, "fraud_scoring")
    assert value(entry, "fraud_scoring_rows") == 250
    assert value(entry, "fraud_scoring_flagged") == 1
    # A new success time is how Prometheus tells this run from the last one.
    assert value(entry, "fraud_scoring_last_success_timestamp_seconds") > first


def test_a_push_reads_nothing_from_the_gateway() -> None:
    # One POST and nothing else: no read-back of earlier values, so no lock is needed
    # between runs, and a gateway that fails reads cannot change what is pushed.
    with RecordingServer([Response(200, b"")]) as server:
        assert push_scoring_metrics(
            server.url, rows=7, flagged=1, seconds=1, model_version="m", timeout=2
        )
        server.wait_for_requests(1)
        (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/metrics/job/fraud_scoring")
    body = request.body.decode()
    assert "fraud_scoring_rows 7.0" in body
    assert "fraud_scoring_flagged 1.0" in body
    assert "_total" not in body and "counter" not in body


def test_concurrent_runs_each_push_one_consistent_run(pushgateway: Service) -> None:
    results: list[bool] = []

    def run(index: int) -> None:
        results.append(scoring(pushgateway, rows=10 * index, flagged=index))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 6
    entry = group(pushgateway, "fraud_scoring")
    # Whichever run landed last, its figures arrived together in one request.
    rows = value(entry, "fraud_scoring_rows")
    assert rows in {10 * i for i in range(1, 7)}
    assert value(entry, "fraud_scoring_flagged") == rows / 10


def test_failed_run_keeps_last_good_results(pushgateway: Service) -> None:
    assert scoring(pushgateway, rows=1000, flagged=4)
    good = group(pushgateway, "fraud_scoring")
    success_stamp = value(good, "fraud_scoring_last_success_timestamp_seconds")

    assert scoring(pushgateway, rows=0, flagged=0, succeeded=False) is True
    entry = group(pushgateway, "fraud_scoring")
    # Push-add replaced only the failure timestamp: no gauge reset to 0.
    assert value(entry, "fraud_scoring_rows") == 1000
    assert value(entry, "fraud_scoring_last_success_timestamp_seconds") == success_stamp
    assert success_stamp <= value(entry, "fraud_scoring_last_failure_timestamp_seconds") <= time.time() + 1


def test_failed_first_run_pushes_no_result_gauges(pushgateway: Service) -> None:
    before = time.time()
    assert scoring(pushgateway, succeeded=False) is True
    assert push_training_metrics(
        pushgateway.url, auprc=0, roc_auc=0, threshold=0, seconds=0, model_version="x",
        gate_passed=False, production_version=None, succeeded=False,
    )
    assert push_drift_metrics(
        pushgateway.url, psi={}, wasserstein={}, drift_share=0, drift_detected=False,
        seconds=0, succeeded=False,
    )
    after = time.time()
    for job in telemetry.JOBS:
        entry = group(pushgateway, job)
        assert metric_names(entry) == {f"{job}_last_failure_timestamp_seconds"}
        # The failure is stamped with the time of this run, not just present.
        assert before - 1 <= value(entry, f"{job}_last_failure_timestamp_seconds") <= after + 1


def test_empty_batch_is_pushed_with_zero_ratio(pushgateway: Service) -> None:
    assert scoring(pushgateway, rows=0, flagged=0)
    entry = group(pushgateway, "fraud_scoring")
    assert value(entry, "fraud_scoring_rows") == 0
    assert value(entry, "fraud_scoring_flagged_ratio") == 0


@pytest.mark.parametrize(
    "overrides",
    [dict(rows=-1), dict(flagged=-1), dict(rows=5, flagged=6), dict(seconds=float("nan"))],
)
def test_impossible_values_are_refused_not_pushed(pushgateway: Service, overrides) -> None:
    assert scoring(pushgateway, **overrides) is False
    assert pushgateway_groups(pushgateway) == []


# --------------------------------------------------------------------------- training


def test_training_push(pushgateway: Service) -> None:
    assert push_training_metrics(
        pushgateway.url, auprc=0.82, roc_auc=0.975, threshold=0.37, seconds=120.0,
        model_version="m-2", gate_passed=True, production_version="m-2",
    )
    entry = group(pushgateway, "fraud_training")
    assert value(entry, "fraud_model_auprc") == pytest.approx(0.82)
    assert value(entry, "fraud_model_roc_auc") == pytest.approx(0.975)
    assert value(entry, "fraud_model_threshold") == pytest.approx(0.37)
    assert value(entry, "fraud_training_duration_seconds") == 120
    assert value(entry, "fraud_training_gate_passed") == 1
    assert sorted(series_labels(entry, "fraud_model_info"), key=str) == sorted(
        [{"model_version": "m-2", "role": "candidate"},
         {"model_version": "m-2", "role": "production"}], key=str)
    assert "fraud_training_last_success_timestamp_seconds" in entry

    # A later run whose candidate fails the gate: the old version labels disappear, since
    # push-add replaces the whole fraud_model_info family.
    assert push_training_metrics(
        pushgateway.url, auprc=0.5, roc_auc=0.9, threshold=0.5, seconds=100.0,
        model_version="m-3", gate_passed=False, production_version=None,
    )
    entry = group(pushgateway, "fraud_training")
    assert value(entry, "fraud_training_gate_passed") == 0
    assert series_labels(entry, "fraud_model_info") == [{"model_version": "m-3", "role": "candidate"}]


def test_model_info_is_shared_by_scoring_and_training(pushgateway: Service) -> None:
    # The gateway rejects a name whose HELP differs between groups: both pushes must pass.
    assert scoring(pushgateway, model_version="m-1")
    assert push_training_metrics(
        pushgateway.url, auprc=0.8, roc_auc=0.97, threshold=0.4, seconds=1.0,
        model_version="m-2", gate_passed=True, production_version="m-1",
    )
    assert scoring(pushgateway, model_version="m-1")


# ------------------------------------------------------------------------------ drift


def test_drift_push_one_series_per_feature(pushgateway: Service) -> None:
    psi = {f: 0.01 for f in FEATURES} | {"score": 0.31}
    wasserstein = {f: 0.002 for f in FEATURES if f != "score"}
    assert push_drift_metrics(
        pushgateway.url, psi=psi, wasserstein=wasserstein, drift_share=0.2,
        drift_detected=True, seconds=3.0,
    )
    entry = group(pushgateway, "fraud_drift")
    assert len(entry["fraud_drift_psi"]["metrics"]) == len(FEATURES) == 30
    assert value(entry, "fraud_drift_psi", feature="score") == pytest.approx(0.31)
    assert len(entry["fraud_drift_wasserstein_scaled"]["metrics"]) == 29
    assert value(entry, "fraud_drift_share") == pytest.approx(0.2)
    assert value(entry, "fraud_drift_detected") == 1
    assert value(entry, "fraud_drift_duration_seconds") == 3

    # Features missing from the next run do not linger with old values.
    assert push_drift_metrics(
        pushgateway.url, psi={"score": 0.01}, wasserstein={"Amount": 0.0}, drift_share=0.0,
        drift_detected=False, seconds=1.0,
    )
    entry = group(pushgateway, "fraud_drift")
    assert series_labels(entry, "fraud_drift_psi") == [{"feature": "score"}]
    assert value(entry, "fraud_drift_detected") == 0


def test_drift_refuses_unbounded_label_sets(pushgateway: Service) -> None:
    psi = {f"row-{i}": 0.1 for i in range(MAX_FEATURE_LABELS + 1)}
    assert push_drift_metrics(
        pushgateway.url, psi=psi, wasserstein={}, drift_share=0, drift_detected=False, seconds=1
    ) is False
    assert pushgateway_groups(pushgateway) == []


# ----------------------------------------------------------------- realised performance


def realized(gateway: Service, **overrides: Any) -> bool:
    args: dict[str, Any] = dict(
        role="production", model_version="m-7", day="2024-01-05", mature=True, rows=50_000,
        frauds=90, alerts=120, auprc=0.71, precision=0.6, recall=0.8, cost=1234.5,
        known_fraud_share=0.95,
    )
    args.update(overrides)
    return push_realized_performance(gateway.url, **args)


def realized_group(gateway: Service, role: str) -> dict[str, Any] | None:
    for entry in pushgateway_groups(gateway):
        if entry["labels"] == {"job": "fraud_realized_performance", "role": role}:
            return entry
    return None


def test_realized_performance_lands_in_one_group_per_role(pushgateway: Service) -> None:
    assert realized(pushgateway)
    assert realized(pushgateway, role="challenger", model_version="m-8", precision=0.7)
    groups = pushgateway_groups(pushgateway)
    assert sorted(g["labels"]["role"] for g in groups) == ["challenger", "production"]
    entry = realized_group(pushgateway, "production")
    assert value(entry, "fraud_realized_day_timestamp_seconds") == 1704412800  # 2024-01-05 UTC
    assert value(entry, "fraud_realized_mature") == 1
    assert value(entry, "fraud_realized_rows") == 50_000
    assert value(entry, "fraud_realized_frauds") == 90
    assert value(entry, "fraud_realized_alerts") == 120
    assert value(entry, "fraud_realized_auprc") == pytest.approx(0.71)
    assert value(entry, "fraud_realized_precision") == pytest.approx(0.6)
    assert value(entry, "fraud_realized_recall") == pytest.approx(0.8)
    assert value(entry, "fraud_realized_cost") == pytest.approx(1234.5)
    assert value(entry, "fraud_realized_known_fraud_share") == pytest.approx(0.95)
    assert value(entry, "fraud_realized_model_info", model_version="m-7") == 1
    assert "fraud_realized_performance_last_success_timestamp_seconds" in entry
    assert value(realized_group(pushgateway, "challenger"), "fraud_realized_precision") == 0.7


def test_a_later_day_replaces_the_earlier_one_without_a_new_group(pushgateway: Service) -> None:
    assert realized(pushgateway, day="2024-01-05", mature=True, recall=0.8)
    assert realized(pushgateway, day="2024-01-09", mature=False, recall=0.4, model_version="m-9")
    (entry,) = pushgateway_groups(pushgateway)
    assert value(entry, "fraud_realized_day_timestamp_seconds") == 1704758400  # 2024-01-09
    assert value(entry, "fraud_realized_mature") == 0
    assert value(entry, "fraud_realized_recall") == pytest.approx(0.4)
    assert series_labels(entry, "fraud_realized_model_info") == [{"model_version": "m-9"}]


def test_undefined_realized_shares_are_pushed_as_nan(pushgateway: Service) -> None:
    # A day without alerts has no precision; it must still be pushed, and never alert.
    assert realized(pushgateway, alerts=0, precision=float("nan"))
    entry = realized_group(pushgateway, "production")
    assert entry["fraud_realized_precision"]["metrics"][0]["value"] == "NaN"


@pytest.mark.parametrize(
    "overrides",
    [
        dict(role="shadow"),  # would open a group that lives for ever
        dict(role=""),
        dict(model_version=" "),
        dict(day="2024-1-5"),
        dict(day="20240105"),
        dict(day="2024-02-30"),
        dict(rows=-1),
        dict(frauds=60_000),
        dict(alerts=50_001),
        dict(rows=10.5),
        dict(precision=1.2),
        dict(recall=-0.1),
        dict(auprc=float("inf")),
        dict(known_fraud_share="high"),
        dict(cost=float("nan")),
    ],
)
def test_impossible_realized_values_are_refused_not_pushed(
    pushgateway: Service, overrides: dict[str, Any]
) -> None:
    assert realized(pushgateway, **overrides) is False
    assert pushgateway_groups(pushgateway) == []


def test_realized_push_never_raises_without_a_gateway() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert push_realized_performance(
        url, role="production", model_version="m", day="2024-01-05", mature=True, rows=1,
        frauds=0, alerts=0, auprc=0.5, precision=0.5, recall=0.5, cost=0,
        known_fraud_share=1, timeout=1,
    ) is False


# --------------------------------------------------------------- no gateway / failures


@pytest.mark.parametrize("url", [None, "", "   "])
def test_no_gateway_url_logs_once_and_skips(
    url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fraud_assets.core.monitoring.telemetry"):
        assert push_scoring_metrics(url, rows=1, flagged=0, seconds=1, model_version="m") is False
    records = [r for r in caplog.records if r.name == "fraud_assets.core.monitoring.telemetry"]
    assert len(records) == 1
    assert "fraud_scoring" in records[0].getMessage()


def test_unreachable_gateway_returns_false_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="fraud_assets.core.monitoring.telemetry"):
        assert push_scoring_metrics(url, rows=1, flagged=0, seconds=1, model_version="m",
                                    timeout=1) is False
        assert push_training_metrics(url, auprc=1, roc_auc=1, threshold=0.5, seconds=1,
                                     model_version="m", gate_passed=True,
                                     production_version=None, timeout=1) is False
        assert push_drift_metrics(url, psi={"score": 0.1}, wasserstein={}, drift_share=0,
                                  drift_detected=False, seconds=1, timeout=1) is False
        assert push_scoring_metrics(url, rows=1, flagged=0, seconds=1, model_version="m",
                                    succeeded=False, timeout=1) is False
    assert any("Pushgateway" in r.getMessage() for r in caplog.records)


def test_gateway_errors_are_reported_not_raised() -> None:
    with RecordingServer([Response(500, b"boom")]) as server:
        ok = push_scoring_metrics(
            server.url, rows=7, flagged=1, seconds=1, model_version="m", timeout=2
        )
        server.wait_for_requests(1)
    assert ok is False


def test_credentials_in_the_url_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://user:s3cret@127.0.0.1:{free_port()}"
    with caplog.at_level(logging.DEBUG, logger="fraud_assets.core.monitoring.telemetry"):
        assert push_scoring_metrics(url, rows=1, flagged=0, seconds=1, model_version="m",
                                    timeout=1) is False
    assert caplog.records
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport", "http://[::1", "ftp://127.0.0.1/x"])
def test_malformed_gateway_url_returns_false(url: str) -> None:
    assert push_scoring_metrics(url, rows=1, flagged=0, seconds=1, model_version="m",
                                timeout=1) is False
    assert push_drift_metrics(url, psi={}, wasserstein={}, drift_share=0,
                              drift_detected=False, seconds=1, timeout=1) is False


def test_numpy_like_values_are_accepted(pushgateway: Service) -> None:
    np = pytest.importorskip("numpy")
    assert push_scoring_metrics(pushgateway.url, rows=np.int64(10), flagged=np.int64(1),
                                seconds=np.float32(0.5), model_version="m")
    assert push_drift_metrics(pushgateway.url, psi={"score": np.float32(0.3)},
                              wasserstein={"score": np.float64(0.1)},
                              drift_share=np.float64(0.5), drift_detected=np.bool_(True),
                              seconds=np.float32(1.0))
    entry = group(pushgateway, "fraud_drift")
    assert value(entry, "fraud_drift_detected") == 1
    assert value(entry, "fraud_drift_psi", feature="score") == pytest.approx(0.3)
