"""The loop in time on a real local instance: labels applied once, realised figures, automation,
and a command-line rollback shown in Dagster."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.storage.locations import Location
from fraud_assets.definitions import build_definitions
from fraud_assets.defs.loop_sensors import serving_events

from .conftest import DAY, LABELS_DAY, apply, run_pipeline, sensor_requests, write_labels


def test_label_file_applied_once_and_realised_figures_recomputed(project, instance, scored):
    frauds = scored["transaction_id"].iloc[[5, 50, 500]].astype(str).tolist()
    write_labels(project, f"{LABELS_DAY}_chargebacks.csv", [(t, DAY, 1) for t in frauds])

    (request,), cursor = sensor_requests(instance)
    assert request.tags["dagster/asset_partition_range_start"] == DAY
    assert apply(instance, request).success
    assert not (project / "data" / "labels" / f"{LABELS_DAY}_chargebacks.csv").exists()
    assert (project / "data" / "labels" / "processed" / f"{LABELS_DAY}_chargebacks.csv").exists()
    stored = pd.read_parquet(project / "data" / "assets" / "transaction_labels" / f"{DAY}.parquet")
    assert sorted(stored["transaction_id"]) == sorted(frauds)

    # The same run again (a re-executed run) and the same tick again apply nothing twice.
    assert apply(instance, request).success
    again = pd.read_parquet(project / "data" / "assets" / "transaction_labels" / f"{DAY}.parquet")
    pd.testing.assert_frame_equal(again, stored)
    assert sensor_requests(instance, cursor)[0] == []

    defs = build_definitions("local")
    result = dg.materialize(
        [defs.get_assets_def("realized_performance")], instance=instance, partition_key=DAY,
        resources=defs.resources,
    )
    document = next(f for f in result.asset_value("realized_performance")["figures"] if f["role"] == "production")
    truth = scored["transaction_id"].astype(str).isin(frauds).astype(int)
    assert document["frauds"] == 3 and document["mature"] is True  # DAY is far older than 30 days
    assert document["auprc"] == pytest.approx(average_precision_score(truth, scored["fraud_probability"]))
    flagged = scored["is_fraud"].to_numpy()
    assert document["alerts"] == int(flagged.sum())
    assert document["caught"] == int((flagged & (truth.to_numpy() == 1)).sum())


def test_a_label_for_an_unknown_transaction_quarantines_the_file(project, instance, scored):
    write_labels(project, f"{LABELS_DAY}.csv", [("5", DAY, 1), ("999999", DAY, 1)])
    (request,), _ = sensor_requests(instance)
    result = apply(instance, request)
    assert not result.success
    quarantined = project / "data" / "quarantine" / f"{LABELS_DAY}.csv"
    assert quarantined.exists()
    reason = (project / "data" / "quarantine" / f"{LABELS_DAY}.csv.reason.json").read_text()
    assert "name no scored transaction" in reason and "999999" in reason and "data row 2" in reason
    assert not (project / "data" / "assets" / "transaction_labels" / f"{DAY}.parquet").exists()


def test_an_unreadable_label_file_is_quarantined_by_the_sensor(project, instance, scored):
    write_labels(project, f"{LABELS_DAY}.csv", [("5", DAY, "fraud")])
    requests, _ = sensor_requests(instance)
    assert requests == []
    assert "not 0 or 1" in (project / "data" / "quarantine" / f"{LABELS_DAY}.csv.reason.json").read_text()


def test_labels_wait_while_their_day_has_unscored_files(project, instance, scored):
    (project / "data" / "incoming").mkdir(exist_ok=True)
    (project / "data" / "processed" / DAY / f"{DAY}_morning.csv").rename(
        project / "data" / "incoming" / f"{DAY}_late.csv"
    )
    write_labels(project, f"{LABELS_DAY}.csv", [("5", DAY, 1)])
    requests, cursor = sensor_requests(instance)
    assert requests == [] and (project / "data" / "labels" / f"{LABELS_DAY}.csv").exists()


def test_late_labels_make_realised_performance_due(project, instance, scored):
    defs = build_definitions("local")
    # Evaluated as of shortly after DAY: the conditions look back a bounded number of days.
    when = datetime(2025, 3, 8, 12, tzinfo=UTC)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=when)
    write_labels(project, f"{LABELS_DAY}.csv", [(scored["transaction_id"].astype(str).iloc[7], DAY, 1)])
    (request,), _ = sensor_requests(instance)
    assert apply(instance, request).success
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=first.cursor, evaluation_time=when + timedelta(minutes=1)
    )
    requested = {
        (key.to_user_string(), partition)
        for key, subset in ((r.key, r.true_subset) for r in after.results)
        for partition in (subset.expensively_compute_partition_keys() or [])
    }
    assert ("realized_performance", DAY) in requested
    # Nothing else of DAY changed: its drift is not due again.
    assert ("drift_statistics", DAY) not in requested


def test_a_command_line_rollback_shows_as_the_serving_version(project, instance, scored, monkeypatch):
    registry = ModelRegistry(Location(str(project / "models")))
    first = registry.production_version()
    production = dg.AssetKey("production_model")
    recorded = instance.get_latest_materialization_event(production).asset_materialization
    assert recorded.tags["dagster/data_version"] == first
    # A second training: the new model becomes the challenger, production stays.
    assert run_pipeline(instance, job="training_job").success
    challenger = registry.challenger_version()
    assert challenger not in (None, first) and registry.production_version() == first
    # `fraud model promote` outside Dagster, then the serving sensor records it.
    registry.promote(challenger, reason="manual")
    events = serving_events(build_definitions("local").resources["storage"], instance)
    assert {e.asset_key.to_user_string(): e.tags["dagster/data_version"] for e in events} == {
        "production_model": challenger, "challenger_model": "none"
    }
    for event in events:
        instance.report_runless_asset_event(event)
    latest = instance.get_latest_materialization_event(production).asset_materialization
    assert latest.tags["dagster/data_version"] == challenger
    assert serving_events(build_definitions("local").resources["storage"], instance) == []
    assert np.isfinite(float(recorded.metadata["test_auprc"].value))


def _requested(result) -> set[str]:
    return {r.key.to_user_string() for r in result.results if r.true_subset.size}


def test_retraining_runs_only_when_the_training_dataset_changed(project, instance, monkeypatch):
    # The loop's clock a few days after DAY, so DAY is a mature day inside the window.
    monkeypatch.setenv("FRAUD_AS_OF_DATE", "2025-03-10")
    monkeypatch.setenv("FRAUD_LABEL_MATURITY_DAYS", "2")
    defs = build_definitions("local")
    dataset_only = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("raw_transactions"), dg.AssetKey("training_dataset")}
    )
    # The first training ran before DAY was scored: DAY is not in its data.
    assert run_pipeline(instance).success
    before = instance.get_latest_materialization_event(dg.AssetKey("training_dataset")).asset_materialization
    assert before.metadata["labelled_day_count"].value == 0
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)

    # DAY is scored now and mature: the dataset changes and retraining is due.
    assert dataset_only.execute_in_process(instance=instance).success
    changed = instance.get_latest_materialization_event(dg.AssetKey("training_dataset")).asset_materialization
    assert changed.metadata["labelled_days"].value == [DAY]
    assert changed.tags["dagster/data_version"] != before.tags["dagster/data_version"]
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert {"train_split", "validation_split", "test_split"} <= _requested(second)

    # A week with nothing new: same fingerprint, so the splits (and training) are not due.
    assert dataset_only.execute_in_process(instance=instance).success
    unchanged = instance.get_latest_materialization_event(dg.AssetKey("training_dataset")).asset_materialization
    assert unchanged.tags["dagster/data_version"] == changed.tags["dagster/data_version"]
    assert unchanged.metadata["retraining"].value.startswith("skipped")
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert "train_split" not in _requested(third)


def test_a_day_is_measured_again_the_morning_its_labels_mature(project, instance, scored):
    # The conditions are built when the code location loads, with the default maturity.
    maturity = 30
    defs = build_definitions("local")
    day = datetime(2025, 3, 4, tzinfo=UTC)
    # Partitions end a day after their date (end_offset=1): DAY matures at DAY + 30 days.
    before = day + timedelta(days=maturity, hours=5)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=before)
    mature = day + timedelta(days=maturity + 1, hours=6, minutes=1)  # past the 06:00 tick
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=first.cursor, evaluation_time=mature
    )
    requested = {
        (r.key.to_user_string(), p)
        for r in second.results
        for p in (r.true_subset.expensively_compute_partition_keys() or [])
    }
    assert {p for name, p in requested if name == "realized_performance"} == {DAY}


def test_a_late_file_makes_its_day_due_downstream(project, instance, scored):
    defs = build_definitions("local")
    when = datetime(2025, 3, 8, 12, tzinfo=UTC)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=when)
    # A file for DAY lands days later and is scored (as the incoming sensor's run does).
    write_batch_late = project / "data" / "incoming" / f"{DAY}_late.csv"
    frame = pd.read_csv(project / "data" / "processed" / DAY / f"{DAY}_morning.csv").head(500)
    frame.to_csv(write_batch_late, index=False)
    scoring = defs.resolve_job_def("scoring_job")
    assert scoring.execute_in_process(instance=instance, partition_key=DAY).success
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=first.cursor, evaluation_time=when + timedelta(minutes=1)
    )
    requested = {
        (r.key.to_user_string(), p)
        for r in after.results
        for p in (r.true_subset.expensively_compute_partition_keys() or [])
    }
    assert {("drift_statistics", DAY), ("realized_performance", DAY), ("challenger_predictions", DAY)} <= requested
