"""A throwaway project folder with a small labelled dataset and one day of batch files; the
label sensor and labels job as the label tests drive them."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from fraud_assets.core.data.tables import write_table
from fraud_assets.definitions import build_definitions
from fraud_assets.synthetic.generate import generate_transactions

DAY = "2025-03-04"
LABELS_DAY = "2025-03-06"  # reported two days after DAY
# Enough frauds for every split of a small sample, so the graph runs in seconds.
FRAUD_RATE = 0.01
FAST_TRAINING = {"ops": {"fraud_model": {"config": {"n_estimators": 80, "early_stopping_rounds": 20}}}}


def write_batch(root: Path, name: str, *, rows: int = 3_000, drift: float = 0.0, seed: int = 1) -> Path:
    frame = generate_transactions(rows, seed=seed, start_day=3, n_days=1, labels=False, drift=drift)
    path = root / "data" / "incoming" / name
    write_table(frame, str(path))
    return path


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUD_ENV", "local")
    for name in ("FRAUD_PUSHGATEWAY_URL", "FRAUD_SLACK_WEBHOOK_URL", "FRAUD_AUPRC_FLOOR"):
        monkeypatch.delenv(name, raising=False)
    raw = generate_transactions(40_000, seed=3, n_days=2, fraud_rate=FRAUD_RATE)
    write_table(raw, str(tmp_path / "data" / "raw" / "creditcard.csv"))
    write_batch(tmp_path, f"{DAY}_morning.csv")
    return tmp_path


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def run_pipeline(instance, *, env=None, run_config=FAST_TRAINING, job="fraud_pipeline_job", **kwargs):
    defs = build_definitions(env)
    job_def = defs.resolve_job_def(job)
    if job not in ("fraud_pipeline_job", "training_job") and run_config is FAST_TRAINING:
        run_config = {}  # the training config belongs to jobs that train
    return job_def.execute_in_process(
        instance=instance,
        partition_key=DAY if job_def.partitions_def is not None else None,
        run_config=run_config,
        raise_on_error=False,
        **kwargs,
    )


def check_results(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        evaluation.check_name: evaluation
        for evaluation in (
            event.event_specific_data for event in result.all_events if event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
    }


def materialized(result) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


@pytest.fixture
def scored(project, instance, monkeypatch):
    """DAY trained on and scored; predictions loaded."""
    monkeypatch.setenv("FRAUD_LABEL_MATURITY_DAYS", "30")
    assert run_pipeline(instance).success
    predictions = pd.read_parquet(project / "data" / "predictions" / f"date={DAY}" / f"{DAY}_morning.parquet")
    return predictions


def write_labels(project, name: str, rows: list[tuple]) -> None:
    folder = project / "data" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["transaction_id", "transaction_date", "Class"])
    frame.to_csv(folder / name, index=False)


def sensor_requests(instance, cursor=None):
    defs = build_definitions("local")
    sensor = next(s for s in defs.sensors if s.name == "label_file_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as context:
        result = sensor.evaluate_tick(context)
    return result.run_requests, result.cursor


def apply(instance, request):
    job = build_definitions("local").resolve_job_def("labels_job")
    return job.execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False
    )
