"""Only what can pass on retry is retried: a split without frauds fails at once."""

import json
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


def test_the_retry_delay_comes_from_the_environment():
    policies = _retry_policies_loaded_with([None, "2.5", "-1", "soon", "nan", "inf"])
    assert policies["None"] == [2, 10.0, "EXPONENTIAL"]
    assert policies["2.5"] == [2, 2.5, "EXPONENTIAL"]
    for bad in ("-1", "soon", "nan", "inf"):
        assert policies[bad].startswith("FRAUD_RETRY_DELAY_SECONDS must be"), (bad, policies[bad])


def _retry_policies_loaded_with(delays: list[str | None]) -> dict:
    # The policy is read when the module loads: a fresh interpreter loads it once per setting
    # (a setting it refuses leaves the module, and so the code location, unloadable).
    code = """
import importlib, json, os, sys
policies = {}
for delay in json.loads(sys.argv[1]):
    os.environ.pop("FRAUD_RETRY_DELAY_SECONDS", None)
    if delay is not None:
        os.environ["FRAUD_RETRY_DELAY_SECONDS"] = delay
    sys.modules.pop("fraud_assets.defs.errors", None)
    try:
        p = importlib.import_module("fraud_assets.defs.errors").TRANSIENT_RETRY
        policies[str(delay)] = [p.max_retries, p.delay, p.backoff.value]
    except ValueError as error:
        policies[str(delay)] = str(error)
print(json.dumps(policies))
"""
    done = subprocess.run([sys.executable, "-c", code, json.dumps(delays)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)

