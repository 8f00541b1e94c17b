"""Failure alerts to Slack, and metrics from real runs scraped by a real Prometheus."""

import logging
import time

import dagster as dg
import pytest

from fraud_assets.core.data.tables import write_table
from fraud_assets.definitions import build_definitions
from fraud_assets.defs.alerting import build_run_failure_sensor
from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.graph.conftest import check_results, run_pipeline
from fraud_assets_tests.services.prometheus_stack import (
    dashboard_query_failures,
    pushgateway_groups,
    query,
    wait_for_series,
)


def failed_scoring_run(instance):
    result = run_pipeline(instance, job="scoring_job")  # no production model yet
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    (entry,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure = entry.dagster_event
    return run, failure


def evaluate_failure_sensor(instance, run, failure, env):
    defs = build_definitions(env)
    resources = {k: v for k, v in defs.resources.items() if k in ("slack", "metrics")}
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure,
        resources=resources,
    ).for_run_failure()
    build_run_failure_sensor(running=False)(context)


def test_failed_run_posts_to_slack_and_records_the_failure(
    project, instance, slack_server, pushgateway, monkeypatch
):
    monkeypatch.setenv("FRAUD_SLACK_WEBHOOK_URL", slack_server.url)
    monkeypatch.setenv("FRAUD_PUSHGATEWAY_URL", pushgateway.url)
    before = time.time()
    run, failure = failed_scoring_run(instance)
    evaluate_failure_sensor(instance, run, failure, "local")
    after = time.time()

    (request,) = slack_server.wait_for_requests(1)
    text = request.json()["text"]
    assert "scoring_job" in text and "failed" in text and "no production model" in text
    groups = pushgateway_groups(pushgateway)
    scoring = next(g for g in groups if g["labels"]["job"] == "fraud_scoring")
    (stamp,) = scoring["fraud_scoring_last_failure_timestamp_seconds"]["metrics"]
    # Stamped with the time of this failure, not just present.
    assert before - 1 <= float(stamp["value"]) <= after + 1
    assert "fraud_scoring_rows" not in scoring  # a failure never overwrites results


def test_without_webhook_alerts_only_log(project, instance, monkeypatch, caplog):
    monkeypatch.delenv("FRAUD_SLACK_WEBHOOK_URL", raising=False)
    caplog.set_level(logging.INFO, logger="fraud_assets.core.monitoring.alerts")
    run, failure = failed_scoring_run(instance)
    evaluate_failure_sensor(instance, run, failure, "local")  # must not raise
    assert any("No Slack webhook URL configured" in r.getMessage() for r in caplog.records)


def test_failed_gate_posts_to_slack_once(project, instance, slack_server, monkeypatch):
    monkeypatch.setenv("FRAUD_SLACK_WEBHOOK_URL", slack_server.url)
    monkeypatch.setenv("FRAUD_AUPRC_FLOOR", "0.9999")
    result = run_pipeline(instance, job="training_job")
    assert not result.success
    assert not check_results(result)["fraud_model_quality_gate"].passed
    (request,) = slack_server.wait_for_requests(1)
    assert "not promoted" in request.json()["text"]

    # The run failed on the gate, which has said why: the failure sensor adds nothing.
    run = instance.get_run_by_id(result.run_id)
    (entry,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    evaluate_failure_sensor(instance, run, entry.dagster_event, "local")  # posts synchronously
    assert len(slack_server.requests) == 1


def test_a_failed_raw_data_check_alerts_through_the_failure_sensor(project, instance, slack_server, monkeypatch):
    # Unlike the gate, the raw-data check does not post itself: the sensor must.
    monkeypatch.setenv("FRAUD_SLACK_WEBHOOK_URL", slack_server.url)
    raw = generate_transactions(20_000, seed=3, n_days=2, fraud_rate=0.0)
    write_table(raw, str(project / "data" / "raw" / "creditcard.csv"))
    result = run_pipeline(instance, job="training_job")
    assert not check_results(result)["raw_transactions_quality"].passed
    assert slack_server.requests == []

    run = instance.get_run_by_id(result.run_id)
    (entry,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    evaluate_failure_sensor(instance, run, entry.dagster_event, "local")
    (request,) = slack_server.wait_for_requests(1)
    assert "training_job" in request.json()["text"] and "raw_transactions_quality" in request.json()["text"]


@pytest.mark.integration
def test_runs_push_metrics_that_prometheus_scrapes(project, instance, pushgateway, prometheus, monkeypatch):
    monkeypatch.setenv("FRAUD_PUSHGATEWAY_URL", pushgateway.url)
    result = run_pipeline(instance)
    assert result.success
    scored = instance.get_latest_materialization_event(dg.AssetKey("daily_predictions")).asset_materialization
    rows = scored.metadata["rows"].value

    wait_for_series(prometheus, f"fraud_scoring_rows == {rows}")
    # The run's rows reach the daily total that Prometheus computes from the pushed gauges.
    wait_for_series(prometheus, f"job:fraud_scoring_rows:sum_1d >= {rows}")
    auprc = float(wait_for_series(prometheus, "fraud_model_auprc")[0]["value"][1])
    assert 0.5 < auprc <= 1.0
    assert wait_for_series(prometheus, 'fraud_model_info{role="production"}')
    psi = wait_for_series(prometheus, "fraud_drift_psi")
    assert {series["metric"]["feature"] for series in psi} >= {"V1", "V28", "Amount", "score"}
    for job in ("scoring", "training", "drift"):
        assert wait_for_series(prometheus, f"fraud_{job}_last_success_timestamp_seconds")
    # Every series carries the pushing job's label, not the gateway's (honor_labels).
    assert {s["metric"]["job"] for s in query(prometheus, "fraud_scoring_rows")} == {"fraud_scoring"}

    # Realised performance is pushed by a later feature through the same resource; push a
    # day here so the realised panels have something to show.
    metrics = build_definitions("local").resources["metrics"].process_config_and_initialize()
    assert metrics.realized_performance(
        role="production", model_version="m-live", day="2024-01-05", mature=True, rows=rows,
        frauds=10, alerts=12, auprc=0.7, precision=0.75, recall=0.9, cost=40.0,
        known_fraud_share=1.0,
    )
    wait_for_series(prometheus, 'fraud_realized_precision{role="production"} == 0.75')
    checked, failures = dashboard_query_failures(prometheus)
    assert checked > 20
    assert not failures, "\n".join(failures)


def test_a_failed_pipeline_run_marks_only_the_stages_that_failed():
    from fraud_assets.core.monitoring import telemetry
    from fraud_assets.defs.alerting import PIPELINE_STAGE_OF_STEP, jobs_to_mark_failed

    assert jobs_to_mark_failed("pipeline", ["drift_statistics"]) == (telemetry.JOB_DRIFT,)
    assert jobs_to_mark_failed("pipeline", ["fraud_model"]) == (telemetry.JOB_TRAINING,)
    assert jobs_to_mark_failed("pipeline", ["daily_predictions", "drift_statistics"]) == (
        telemetry.JOB_SCORING,
        telemetry.JOB_DRIFT,
    )
    # Failed outside any step (say, at launch): every stage it would have run.
    assert set(jobs_to_mark_failed("pipeline", [])) == set(telemetry.JOBS)
    assert jobs_to_mark_failed("scoring", ["daily_predictions"]) == (telemetry.JOB_SCORING,)
    assert jobs_to_mark_failed("untagged", ["x"]) == ()
    # The step names are the pipeline's own assets, so a rename cannot silently misfile.
    job = build_definitions("local").resolve_job_def("fraud_pipeline_job")
    assert set(PIPELINE_STAGE_OF_STEP) <= set(job.graph.node_dict)
