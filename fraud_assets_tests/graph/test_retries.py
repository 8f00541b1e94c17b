"""Only what can pass on retry is retried: a split without frauds fails at once."""

import os
import subprocess
import sys

import dagster as dg
import pandas as pd

from fraud_assets.core.data.schema import LABEL
from fraud_assets.defs.assets.training import fraud_model, preprocessing_pipeline
from fraud_assets.defs.errors import TRANSIENT_RETRY, retry_only_transient
from fraud_assets.defs.io_managers import ArtifactIOManager, StoredTableLoader
from fraud_assets.defs.resources import DaskCluster, FraudStorage
from fraud_assets.synthetic.generate import generate_transactions


def _retries(result) -> int:
    return sum(1 for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY")


def test_a_split_without_frauds_is_not_retried(tmp_path):
    frame = generate_transactions(6_000, seed=2, n_days=1, fraud_rate=0.01)
    genuine = frame[frame[LABEL] == 0]

    @dg.asset
    def train_split() -> pd.DataFrame:
        return frame

    @dg.asset
    def validation_split() -> pd.DataFrame:
        return genuine  # no frauds: training cannot stop early or choose a threshold

    @dg.asset
    def test_split() -> pd.DataFrame:
        return frame

    # The splits are stored as the graph stores them: fraud_model receives their addresses.
    storage = FraudStorage(data_url=str(tmp_path / "data"), models_url=str(tmp_path / "models"),
                           predictions_url=str(tmp_path / "predictions"))
    result = dg.materialize(
        [train_split, validation_split, test_split, preprocessing_pipeline, fraud_model],
        resources={
            "io_manager": ArtifactIOManager(storage=storage),
            "stored_table_loader": StoredTableLoader(storage=storage),
            "dask": DaskCluster(),
            "model_io_manager": dg.InMemoryIOManager(),
            "model_artifact_io_manager": dg.InMemoryIOManager(),
        },
        raise_on_error=False,
    )
    assert not result.success
    assert result.is_node_failed("fraud_model")
    assert _retries(result) == 0
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "need frauds" in str(failure.event_specific_data.error)


def test_transient_errors_are_still_retried():
    attempts = []

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=1))
    @retry_only_transient
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionResetError("storage endpoint restarting")
        return 1

    result = dg.materialize([flaky])
    assert result.success and len(attempts) == 2 and _retries(result) == 1
    assert TRANSIENT_RETRY.max_retries >= 1


def _retry_policy_loaded_with(delay: str | None) -> subprocess.CompletedProcess:
    # The policy is read when the code location loads: a fresh interpreter per setting.
    env = {key: value for key, value in os.environ.items() if key != "FRAUD_RETRY_DELAY_SECONDS"}
    if delay is not None:
        env["FRAUD_RETRY_DELAY_SECONDS"] = delay
    code = ("from fraud_assets.defs.errors import TRANSIENT_RETRY as p; "
            "print(p.max_retries, p.delay, p.backoff.value)")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_the_retry_delay_comes_from_the_environment():
    assert _retry_policy_loaded_with(None).stdout.split() == ["2", "10.0", "EXPONENTIAL"]
    assert _retry_policy_loaded_with("2.5").stdout.split() == ["2", "2.5", "EXPONENTIAL"]
    for bad in ("-1", "soon", "nan", "inf"):
        refused = _retry_policy_loaded_with(bad)
        assert refused.returncode != 0
        assert "FRAUD_RETRY_DELAY_SECONDS must be" in refused.stderr
