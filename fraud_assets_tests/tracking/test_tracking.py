"""Training runs in MLflow (embedded SQLite store) and aliases that follow the registry."""

import logging

import mlflow
import pytest

from fraud_assets import settings
from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.storage.locations import Location
from fraud_assets.core.tracking.tracker import Tracker
from fraud_assets_tests.tracking.conftest import model_copy

TRIALS = [
    {"number": 0, "params": {"max_depth": 4, "eta": 0.1}, "value": 0.61, "state": "COMPLETE", "seconds": 1.5},
    {"number": 1, "params": {"max_depth": 8, "eta": 0.3}, "value": None, "state": "FAIL", "seconds": 0.2},
]


def client():
    return mlflow.MlflowClient(settings.tracking_uri())


def registry_in(home) -> ModelRegistry:
    return settings.store_urls().registry()


def test_a_tracked_save_logs_params_metrics_data_hash_trials_and_bundle(tracked_home, trained_model):
    test_metrics = {**trained_model.metrics["test"], "log_loss": 0.05, "brier": 0.01}
    validation_metrics = {name: value for name, value in trained_model.metrics["validation"].items()
                          if name != "log_loss"}
    model = model_copy(trained_model, "20250101T000000Z-a",
                       metrics={**trained_model.metrics, "test": test_metrics, "validation": validation_metrics},
                       search={"trials": TRIALS})
    registry = registry_in(tracked_home)
    version = settings.tracker().track_training(model, lambda: registry.save(model))

    run_id = registry.manifest(version)["tracking"]["run_id"]
    run = client().get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_auprc"] == pytest.approx(trained_model.metrics["test"]["auprc"])
    assert run.data.metrics["validation_auprc"] == pytest.approx(trained_model.metrics["validation"]["auprc"])
    assert run.data.metrics["test_log_loss"] == 0.05 and run.data.metrics["test_brier"] == 0.01
    assert "validation_log_loss" not in run.data.metrics  # absent from the manifest: not invented
    assert run.data.params["seed"] == str(trained_model.manifest["training"]["seed"])
    assert run.data.params["best_iteration"] == str(trained_model.manifest["training"]["best_iteration"])
    assert run.data.tags["fraud.data_sha256"] == trained_model.manifest["provenance"]["training_data"]["sha256"]
    assert run.data.tags["fraud.model_version"] == version

    artifacts = {a.path for a in client().list_artifacts(run_id)} | {
        a.path for a in client().list_artifacts(run_id, "bundle")}
    assert {"pr_curve.svg", "bundle/model.ubj", "bundle/manifest.json", "bundle/preprocessing.json"} <= artifacts
    # The embedded store keeps artifacts under the local folder.
    assert (tracked_home / "mlflow" / "artifacts").is_dir()

    children = client().search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    by_number = {c.data.params["trial_number"]: c for c in children}
    assert set(by_number) == {"0", "1"}
    assert by_number["0"].data.params["max_depth"] == "4" and by_number["0"].data.metrics["objective"] == 0.61
    assert by_number["1"].info.status == "FAILED" and "objective" not in by_number["1"].data.metrics

    versions = client().search_model_versions(f"run_id = '{run_id}'")
    assert [v.name for v in versions] == [settings.tracking_model_name()]


def test_a_model_without_search_or_new_metrics_is_logged_without_them(tracked_home, trained_model):
    model = model_copy(trained_model, "20250101T000000Z-b")
    registry = registry_in(tracked_home)
    version = settings.tracker().track_training(model, lambda: registry.save(model))
    run_id = registry.manifest(version)["tracking"]["run_id"]
    assert "test_auprc" in client().get_run(run_id).data.metrics
    assert client().search_runs([client().get_run(run_id).info.experiment_id],
                                f"tags.mlflow.parentRunId = '{run_id}'") == []


def aliases() -> dict[str, str]:
    model = client().get_registered_model(settings.tracking_model_name())
    return dict(model.aliases)


def test_aliases_follow_promotion_challenge_and_rollback(tracked_home, trained_model):
    registry = registry_in(tracked_home)
    tracker = settings.tracker()
    numbers = {}
    for version in ("20250101T000000Z-old", "20250102T000000Z-new"):
        model = model_copy(trained_model, version)
        tracker.track_training(model, lambda m=model: registry.save(m))
        run_id = registry.manifest(version)["tracking"]["run_id"]
        numbers[version] = client().search_model_versions(f"run_id = '{run_id}'")[0].version
    old, new = numbers["20250101T000000Z-old"], numbers["20250102T000000Z-new"]

    registry.promote("20250101T000000Z-old", reason="first")
    assert aliases() == {"champion": old}
    registry.set_challenger("20250102T000000Z-new", reason="gate passed")
    assert aliases() == {"champion": old, "challenger": new}
    registry.promote("20250102T000000Z-new", reason="won on labels")  # ends the challenge too
    assert aliases() == {"champion": new}
    registry.promote("20250101T000000Z-old", reason="rollback")
    assert aliases() == {"champion": old}
    registry.set_challenger("20250102T000000Z-new", reason="again")
    registry.end_challenge("retired", reason="lost")
    assert aliases() == {"champion": old}


def test_cli_promote_moves_the_champion_alias(tracked_home, trained_model):
    from fraud_assets.cli.main import main

    registry = registry_in(tracked_home)
    for version in ("20250101T000000Z-one", "20250102T000000Z-two"):
        model = model_copy(trained_model, version)
        settings.tracker().track_training(model, lambda m=model: registry.save(m))
    for version in ("20250102T000000Z-two", "20250101T000000Z-one"):
        main(["model", "promote", version, "--reason", "operator"])
        run_id = registry.manifest(version)["tracking"]["run_id"]
        expected = client().search_model_versions(f"run_id = '{run_id}'")[0].version
        assert aliases()["champion"] == expected


def test_cli_sync_aliases_reports_what_it_set(tracked_home, trained_model, capsys):
    from fraud_assets.cli.main import main

    registry = registry_in(tracked_home)
    model = model_copy(trained_model, "20250101T000000Z-one")
    version = settings.tracker().track_training(model, lambda: registry.save(model))
    registry.promote(version, reason="first")
    capsys.readouterr()
    main(["model", "sync-aliases"])
    run_id = registry.manifest(version)["tracking"]["run_id"]
    expected = client().search_model_versions(f"run_id = '{run_id}'")[0].version
    assert capsys.readouterr().out.splitlines() == [f"champion: version {expected}", "challenger: removed"]
    assert aliases() == {"champion": expected}


def test_unreachable_tracking_loses_no_model_and_blocks_no_promotion(tmp_path, trained_model, caplog, monkeypatch):
    import socket

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the refusal itself is the test

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tracker = Tracker(uri=f"http://127.0.0.1:{port}", experiment="x", model_name="x")
    registry = ModelRegistry(Location(str(tmp_path / "models")), on_pointer_change=tracker.pointer_follower())
    model = model_copy(trained_model, "20250101T000000Z-down")
    with caplog.at_level(logging.WARNING):
        version = tracker.track_training(model, lambda: registry.save(model))
        registry.promote(version, reason="tracking is down")
    assert registry.production_version() == version
    assert "error" in registry.manifest(version)["tracking"]
    assert "run_id" not in registry.manifest(version)["tracking"]
    assert "saved without an MLflow run" in caplog.text and "aliases not updated" in caplog.text


def test_opening_the_registry_as_fraud_serve_does_loads_no_mlflow(tracked_home):
    import subprocess
    import sys

    probe = ("import sys; from fraud_assets import settings; "
             "registry = settings.store_urls().registry(); registry.production_version(); "
             "print(registry.on_pointer_change is not None, 'mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]  # aliases would follow; MLflow not paid for
    assert not (tracked_home / "mlflow").exists()
