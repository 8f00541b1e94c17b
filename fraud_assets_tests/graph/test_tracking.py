"""The training job logs its model to MLflow and the champion alias follows its promotion."""

import mlflow

from fraud_assets import settings

from .conftest import run_pipeline


def test_training_job_logs_a_run_and_the_champion_alias_follows(project, instance, monkeypatch):
    monkeypatch.setenv("FRAUD_TRACKING", "on")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = run_pipeline(instance, job="training_job")
    assert result.success

    registry = settings.store_urls().registry()
    version = registry.production_version()
    manifest = registry.manifest(version)
    run_id = manifest["tracking"]["run_id"]
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow' / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.data.metrics["test_auprc"] == manifest["metrics"]["test"]["auprc"]
    assert run.data.metrics["validation_auprc"] == manifest["metrics"]["validation"]["auprc"]
    assert run.data.params["n_estimators"] == "80"  # the job's run config
    assert run.data.tags["fraud.data_sha256"] == manifest["provenance"]["training_data"]["sha256"]
    assert run.data.tags["fraud.dagster_run_id"] == result.run_id
    assert "bundle/model.ubj" in {a.path for a in client.list_artifacts(run_id, "bundle")}

    materialization = next(e for e in result.get_asset_materialization_events()
                           if e.asset_key.to_user_string() == "fraud_model")
    assert materialization.materialization.metadata["mlflow_run_id"].value == run_id
    champion = client.get_model_version_by_alias(settings.tracking_model_name(), "champion")
    assert champion.run_id == run_id
