"""The whole asset graph, materialised in process on small generated data."""

import json
from dataclasses import replace

import dagster as dg
import pandas as pd

from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.storage.locations import Location
from fraud_assets.definitions import build_definitions

from .conftest import DAY, check_results, materialized, run_pipeline, write_batch

ALL_ASSETS = {
    "raw_transactions",
    "training_dataset",
    "train_split",
    "validation_split",
    "test_split",
    "preprocessing_pipeline",
    "fraud_model",
    "production_model",
    "challenger_model",
    "daily_predictions",
    "challenger_predictions",
    "drift_statistics",
}


def test_definitions_load_and_validate():
    defs = build_definitions("local")
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert ALL_ASSETS <= keys
    # Training and drift moved to automation conditions; scoring keeps its cut-off.
    assert {s.name for s in defs.schedules} == {"daily_scoring_schedule"}


def test_whole_graph_trains_promotes_scores_and_checks_drift(project, instance, monkeypatch):
    monkeypatch.setenv("FRAUD_REFIT", "on")  # the suite turns it off for speed; the default is on
    result = run_pipeline(instance)
    assert result.success
    assert materialized(result) == ALL_ASSETS
    checks = check_results(result)
    assert checks["raw_transactions_quality"].passed
    assert checks["fraud_model_quality_gate"].passed
    assert checks["batch_files_valid"].passed
    assert checks["drift_within_bounds"].passed

    registry = ModelRegistry(Location(str(project / "models")))
    production = registry.production_version()
    assert production is not None and production == registry.latest_version()

    predictions = pd.read_parquet(project / "data" / "predictions" / f"date={DAY}" / f"{DAY}_morning.parquet")
    assert list(predictions.columns) == ["transaction_id", "fraud_probability", "is_fraud", "model_version"]
    assert len(predictions) == 3_000
    assert predictions["transaction_id"].tolist() == list(range(3_000))
    assert set(predictions["model_version"].astype(str)) == {production}

    splits = {n: pd.read_parquet(project / "data" / "assets" / f"{n}.parquet") for n in ("train_split", "test_split")}
    assert splits["train_split"]["Time"].max() <= splits["test_split"]["Time"].min()
    # Fitted parameters are JSON, not pickles.
    preprocessing = json.loads((project / "models" / "assets" / "preprocessing_pipeline.json").read_text())
    assert preprocessing["kind"] == "standardize-v2"

    drift = json.loads((project / "data" / "assets" / "drift_statistics" / f"{DAY}.json").read_text())
    assert drift["drift_detected"] is False
    assert set(drift["features"]) >= {"V1", "V28", "Amount", "score"}

    model_metadata = instance.get_latest_materialization_event(dg.AssetKey("fraud_model")).asset_materialization.metadata
    for key in ("test_auprc", "test_roc_auc", "threshold", "confusion_matrix", "top_features",
                "best_iteration", "training_seconds", "precision_recall_curve"):
        assert key in model_metadata, key
    assert model_metadata["test_auprc"].value > 0.5
    # The booster shipped was refitted on train and validation together.
    train_and_validation = sum(len(pd.read_parquet(project / "data" / "assets" / f"{n}.parquet"))
                               for n in ("train_split", "validation_split"))
    assert model_metadata["refit_rows"].value == train_and_validation
    assert model_metadata["threshold"].value == round(registry.load_production().threshold, 6)


def test_failed_quality_gate_keeps_the_production_model(project, instance, monkeypatch):
    assert run_pipeline(instance).success
    registry = ModelRegistry(Location(str(project / "models")))
    first = registry.production_version()

    monkeypatch.setenv("FRAUD_AUPRC_FLOOR", "0.9999")
    result = run_pipeline(instance)
    assert not check_results(result)["fraud_model_quality_gate"].passed
    # The blocking check stops promotion and everything after it.
    assert "production_model" not in materialized(result)
    assert "daily_predictions" not in materialized(result)
    assert registry.latest_version() != first
    assert registry.production_version() == first


def test_gate_fails_when_candidate_is_worse_than_production(project, instance, monkeypatch):
    assert run_pipeline(instance).success
    registry = ModelRegistry(Location(str(project / "models")))
    first = registry.production_version()
    # With the floor out of the way, a crippled candidate (one shallow tree) can fail only
    # because it loses against the production model by more than the allowed margin.
    monkeypatch.setenv("FRAUD_AUPRC_FLOOR", "0")
    weak = {"ops": {"fraud_model": {"config": {"n_estimators": 1, "max_depth": 1, "early_stopping_rounds": 1}}}}
    result = run_pipeline(instance, run_config=weak)
    gate = check_results(result)["fraud_model_quality_gate"]
    assert not gate.passed
    assert ">= floor 0.0000" in gate.description
    assert f"more than 0.0200 of production {first}" in gate.description
    assert registry.production_version() == first


def test_gate_and_promotion_use_the_version_their_training_recorded(project, instance, monkeypatch):
    # Training whose gate fails leaves a candidate that is not in production...
    monkeypatch.setenv("FRAUD_AUPRC_FLOOR", "0.9999")
    assert not run_pipeline(instance, job="training_job").success
    monkeypatch.delenv("FRAUD_AUPRC_FLOOR")
    registry = ModelRegistry(Location(str(project / "models")))
    candidate = registry.latest_version()
    recorded = instance.get_latest_materialization_event(dg.AssetKey("fraud_model")).asset_materialization
    assert recorded.metadata["model_version"].value == candidate
    # ...then another training saves a newer version before this one is promoted.
    newer = replace(registry.load(candidate), version="xgb-20990101T000000Z-00000000")
    registry.save(newer)
    assert registry.latest_version() == newer.version

    promotion = (
        build_definitions("local")
        .resolve_job_def("training_job")
        .execute_in_process(
            instance=instance,
            # One step puts a model in production or in shadow: both assets together.
            asset_selection=[dg.AssetKey("production_model"), dg.AssetKey("challenger_model")],
        )
    )

    assert promotion.success
    assert registry.production_version() == candidate


def test_bad_raw_dataset_stops_before_training(project, instance):
    raw = project / "data" / "raw" / "creditcard.csv"
    frame = pd.read_csv(raw)
    frame["Class"] = 0  # no fraud at all: implausible prevalence
    frame.to_csv(raw, index=False)
    result = run_pipeline(instance)
    quality = check_results(result)["raw_transactions_quality"]
    assert not quality.passed
    assert quality.description.startswith("fraud prevalence 0.00000 outside [")
    assert "fraud_model" not in materialized(result)


def test_invalid_raw_file_names_file_column_and_rows(project, instance):
    raw = project / "data" / "raw" / "creditcard.csv"
    frame = pd.read_csv(raw)
    frame["Amount"] = frame["Amount"].astype(object)
    frame.loc[10, "Amount"] = "n/a"
    frame.to_csv(raw, index=False)
    result = run_pipeline(instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.to_string()
    assert "creditcard.csv" in message and "'Amount'" in message and "1 row(s)" in message


def test_bad_batch_file_is_quarantined_and_the_rest_scored(project, instance):
    bad = project / "data" / "incoming" / f"{DAY}_broken.csv"
    bad.write_text("Time,V1\n1,2\n")
    result = run_pipeline(instance)
    assert result.success
    assert not check_results(result)["batch_files_valid"].passed
    quarantined = project / "data" / "quarantine" / bad.name
    assert quarantined.exists() and not bad.exists()
    reason = json.loads((project / "data" / "quarantine" / f"{bad.name}.reason.json").read_text())
    assert "missing column" in reason["reason"]
    # The valid morning batch (write_batch's default 3,000 rows) is still scored in full.
    scored = pd.read_parquet(project / "data" / "predictions" / f"date={DAY}" / f"{DAY}_morning.parquet")
    assert len(scored) == 3_000


def test_a_second_bad_file_of_the_same_name_keeps_the_first_in_quarantine(project, instance):
    quarantine = project / "data" / "quarantine"
    bad = project / "data" / "incoming" / f"{DAY}_broken.csv"
    bad.write_text("Time,V1\n1,2\n")
    assert run_pipeline(instance).success
    bad.write_text("not,a,transactions,file\n")
    assert run_pipeline(instance, job="scoring_job").success
    assert not bad.exists()
    assert (quarantine / bad.name).read_text() == "Time,V1\n1,2\n"
    assert (quarantine / f"{DAY}_broken~2.csv").read_text() == "not,a,transactions,file\n"
    second = json.loads((quarantine / f"{DAY}_broken~2.csv.reason.json").read_text())
    assert second["file"] == f"{DAY}_broken~2.csv" and second["source"].endswith(f"incoming/{bad.name}")
    first = json.loads((quarantine / f"{bad.name}.reason.json").read_text())
    assert first["file"] == bad.name and "missing column" in first["reason"]


def test_drifted_day_fails_the_drift_check(project, instance):
    (project / "data" / "incoming" / f"{DAY}_morning.csv").unlink()
    write_batch(project, f"{DAY}_drifted.parquet", drift=1.0)
    result = run_pipeline(instance)
    drift_check = check_results(result)["drift_within_bounds"]
    assert not drift_check.passed and drift_check.partition == DAY
    metadata = instance.get_latest_materialization_event(dg.AssetKey("drift_statistics")).asset_materialization.metadata
    # One verdict everywhere: the check's severity, the asset's level and detected flag.
    level = metadata["drift_level"].value
    assert level in ("moderate", "major") and metadata["drift_detected"].value is True
    assert drift_check.severity == (
        dg.AssetCheckSeverity.ERROR if level == "major" else dg.AssetCheckSeverity.WARN
    )
    for name in ("drift_share", "largest_psi", "score_psi"):  # numbers the UI can plot
        assert isinstance(drift_check.metadata[name].value, float)
    report = json.loads((project / "data" / "assets" / "drift_statistics" / f"{DAY}.json").read_text())
    # The generator's drift moves V1, V2, V3, V5, V6, V7 and Amount; nothing else.
    assert {"V1", "V3", "Amount"} <= set(report["drifted_features"])
    assert not {"V14", "V17", "V28"} & set(report["drifted_features"])


def test_scoring_without_production_model_fails_clearly(project, instance):
    result = run_pipeline(instance, job="scoring_job")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "no production model" in failure.step_failure_data.error.to_string()


def test_quarantine_claims_its_name_and_finishes_an_interrupted_one(tmp_path, monkeypatch):
    import os

    from fraud_assets.core.storage.locations import Location
    from fraud_assets.defs import batches

    data = Location(str(tmp_path / "data"))
    incoming, quarantine = tmp_path / "data" / "incoming", tmp_path / "data" / "quarantine"
    incoming.mkdir(parents=True)
    quarantine.mkdir()
    # Another run quarantined a file of this name after this one looked: the probe cannot see it.
    (quarantine / "day_x.csv").write_text("the other run's file")
    monkeypatch.setattr(data.fs, "exists", lambda path, **kwargs: False)
    (incoming / "day_x.csv").write_text("this run's file")
    moved = batches.quarantine(data, str(incoming / "day_x.csv"), "quarantine", "bad")
    assert moved == str(quarantine / "day_x~2.csv")
    assert (quarantine / "day_x.csv").read_text() == "the other run's file"
    assert (quarantine / "day_x~2.csv").read_text() == "this run's file"
    assert json.loads((quarantine / "day_x~2.csv.reason.json").read_text())["reason"] == "bad"
    # Killed after claiming its name, before the reason and the removal: finished, not copied again.
    (incoming / "day_y.csv").write_text("interrupted")
    os.link(incoming / "day_y.csv", quarantine / "day_y.csv")
    moved = batches.quarantine(data, str(incoming / "day_y.csv"), "quarantine", "late")
    assert moved == str(quarantine / "day_y.csv") and not (incoming / "day_y.csv").exists()
    assert json.loads((quarantine / "day_y.csv.reason.json").read_text())["reason"] == "late"
    assert sorted(p.name for p in quarantine.iterdir() if p.name.startswith("day_y")) == [
        "day_y.csv", "day_y.csv.reason.json"]
