"""The Dagster graph's training data built by a real cluster: `raw_transactions`,
`training_dataset` (the base file and labelled days), the splits and the preprocessing, with
the rows staying on the workers, and the same figures as the one-process graph."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from fraud_assets.core.cluster.training import ENGINE
from fraud_assets.core.data.labels import LABEL_COLUMNS
from fraud_assets.core.data.schema import LABEL
from fraud_assets.core.data.tables import write_table
from fraud_assets.definitions import build_definitions, build_resources
from fraud_assets.defs import io_managers
from fraud_assets.defs.assets import ingestion
from fraud_assets.defs.io_managers import StoredTableLoader
from fraud_assets.defs.resources import DaskCluster, QualityGate
from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.cluster.conftest import local_project
from fraud_assets_tests.graph.conftest import FAST_TRAINING, FRAUD_RATE
from fraud_assets_tests.s3.conftest import all_objects, buckets, plain_buckets, s3, upload_frame  # noqa: F401

pytestmark = [pytest.mark.dask, pytest.mark.integration, pytest.mark.timeout(600)]

DAYS = ("2025-03-03", "2025-03-04")
DATA_ASSETS = ["raw_transactions", "training_dataset", "train_split", "validation_split", "test_split",
               "preprocessing_pipeline"]
SPLITS = ("train_split", "validation_split", "test_split")
SERVING = ["production_model", "challenger_model"]


def _with_checks(defs):
    """The assets with their checks: the quality gate runs as in a training run."""
    return [*defs.assets, *defs.asset_checks]


def _labelled_day(root, day: str, seed: int, with_ids: bool) -> None:
    """A scored batch in processed/DAY/ and the labels reported for its frauds."""
    truth = generate_transactions(6_000, seed=seed, start_day=3, n_days=1, fraud_rate=FRAUD_RATE)
    batch = truth.drop(columns=[LABEL])
    stem = f"{day}_batch"
    if with_ids:
        batch.insert(0, "transaction_id", [f"T{seed}-{i}" for i in range(len(batch))])
        ids = batch["transaction_id"]
    else:  # labels name the rows by their number in the file
        ids = pd.Series(np.arange(len(batch)).astype(str))
    write_table(batch, str(root / "data" / "processed" / day / f"{stem}.csv"))
    frauds = truth[LABEL].to_numpy() == 1
    labels = pd.DataFrame({"transaction_date": day, "batch_file": stem, "transaction_id": ids[frauds].to_numpy(),
                           LABEL: np.int8(1), "reported_on": "2025-03-06", "label_file": "2025-03-06.csv"})
    write_table(labels[list(LABEL_COLUMNS)], str(root / "data" / "assets" / "transaction_labels" / f"{day}.parquet"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with local_project(tmp_path_factory.mktemp("project"), 40_000, FRAUD_AS_OF_DATE="2025-03-10",
                       FRAUD_LABEL_MATURITY_DAYS="2") as root:
        _labelled_day(root, DAYS[0], seed=11, with_ids=True)
        _labelled_day(root, DAYS[1], seed=12, with_ids=False)
        yield root


def _figures(instance) -> dict:
    latest = {name: instance.get_latest_materialization_event(dg.AssetKey(name)).asset_materialization
              for name in DATA_ASSETS}
    dataset = latest["training_dataset"]
    return {
        "dataset": {key: dataset.metadata[key].value for key in
                    ("dagster/row_count", "frauds", "base_rows", "labelled_days", "labelled_day_frauds")},
        "version": dataset.tags["dagster/data_version"],
        "raw": {key: latest["raw_transactions"].metadata[key].value
                for key in ("dagster/row_count", "frauds", "prevalence", "time_span_days")},
        "splits": {name: (latest[name].metadata["dagster/row_count"].value, latest[name].metadata["frauds"].value)
                   for name in SPLITS},
    }


def test_the_training_data_is_built_by_the_workers_with_the_one_process_figures(project, dask_cluster,
                                                                               monkeypatch):
    defs = build_definitions("local")
    storage = defs.resources["storage"]
    with dg.instance_for_test() as instance:
        assert dg.materialize(_with_checks(defs), selection=[*DATA_ASSETS, "fraud_model", *SERVING],
                              instance=instance, resources=build_resources("local"), run_config=FAST_TRAINING).success
        one_process = _figures(instance)
        one_preprocessor = storage.models().fs.cat(storage.models().path("assets", "preprocessing_pipeline.json"))
    assert one_process["dataset"]["labelled_days"] == list(DAYS)
    assert one_process["dataset"]["labelled_day_frauds"] > 0

    # From here on no table may be read by this process, the gate's test split included.
    read_here = []

    def recorded(location, folder):
        read_here.append(folder)
        return real_read_parts(location, folder)

    real_read_parts = io_managers._read_parts
    monkeypatch.setattr(io_managers, "_read_parts", recorded)
    monkeypatch.setattr(ingestion, "read_transactions", _never)
    monkeypatch.setattr(io_managers.StoredTable, "load", _never)
    resources = {**build_resources("local"), "dask": DaskCluster(scheduler=dask_cluster.address)}
    with dg.instance_for_test() as instance:
        result = dg.materialize(_with_checks(defs), selection=[*DATA_ASSETS, "fraud_model", *SERVING], instance=instance,
                                resources=resources, run_config=FAST_TRAINING)
        assert result.success
        cluster = _figures(instance)
        gate = {check.check_name: check for check in result.get_asset_check_evaluations()}["fraud_model_quality_gate"]
    assert gate.passed and read_here == []

    # The same dataset: rows, frauds, days and data version (so retraining is decided alike).
    assert cluster["dataset"] == one_process["dataset"]
    assert cluster["version"] == one_process["version"]
    assert cluster["raw"] == one_process["raw"]
    # Splits cut at the same points, up to rows that tie at a cut.
    for name in SPLITS:
        (rows, frauds), (one_rows, one_frauds) = cluster["splits"][name], one_process["splits"][name]
        assert abs(rows - one_rows) <= 0.002 * one_rows and abs(frauds - one_frauds) <= 2, (name, rows, one_rows)
    assert sum(rows for rows, _ in cluster["splits"].values()) == one_process["dataset"]["dagster/row_count"]
    cluster_preprocessor = storage.models().fs.cat(storage.models().path("assets", "preprocessing_pipeline.json"))
    np.testing.assert_allclose(_scales(cluster_preprocessor), _scales(one_preprocessor), rtol=2e-3, atol=0.01)

    # Stored as parts behind a pointer; the one-process files they replace are gone.
    data = storage.data()
    for name in ("raw_transactions", "training_dataset", *SPLITS):
        assert data.fs.exists(data.path("assets", f"{name}.parts.json"))
        assert not data.fs.exists(data.path("assets", f"{name}.parquet"))
    registry = storage.registry()
    model, production = registry.load_latest(), registry.load_production()
    assert model.manifest["training"]["engine"] == ENGINE
    assert registry.challenger_version() == model.version != production.version
    # The workers' scores, binned, give the gate the figures this process finds row by row.
    stored = StoredTableLoader(storage=storage).load_input(dg.build_input_context(asset_key=dg.AssetKey("test_split")))
    test_rows = QualityGate().evaluate(model, production, real_read_parts(stored.location, stored.path))
    assert gate.metadata["candidate_auprc"].value == pytest.approx(test_rows.candidate_auprc, abs=5e-4)
    assert gate.metadata["production_auprc"].value == pytest.approx(test_rows.production_auprc, abs=5e-4)
    assert model.manifest["data"]["train"]["rows"] == cluster["splits"]["train_split"][0]

    # Without the cluster the graph reads the parts the workers wrote.
    monkeypatch.undo()
    with dg.instance_for_test() as instance:
        assert dg.materialize(list(defs.assets), selection=["preprocessing_pipeline"], instance=instance,
                              resources=build_resources("local")).success
    in_process = storage.models().fs.cat(storage.models().path("assets", "preprocessing_pipeline.json"))
    np.testing.assert_allclose(_scales(in_process), _scales(cluster_preprocessor), rtol=1e-9)


def _never(*args, **kwargs):
    raise AssertionError("a table was read by the Dagster process, not by the workers")


def _scales(document: bytes) -> np.ndarray:
    import json

    parameters = json.loads(document)
    return np.array([*parameters["center"], *parameters["scale"]], dtype=float)


S3_TRAINING = [*DATA_ASSETS, "fraud_model", *SERVING]


def test_on_s3_the_workers_write_the_parts_and_a_bad_file_leaves_none(
    s3, plain_buckets, dask_cluster, tmp_path  # noqa: F811
):
    resources = {**build_resources("production"), "dask": DaskCluster(scheduler=dask_cluster.address)}
    defs = build_definitions("production")
    raw = generate_transactions(30_000, seed=5, n_days=2, fraud_rate=FRAUD_RATE)
    bad = raw.astype({"V7": object})
    bad.loc[12_345, "V7"] = None  # an empty field on data row 12,346
    upload_frame(s3, plain_buckets["data"], "raw/creditcard.csv", bad, tmp_path)
    with dg.instance_for_test() as instance:
        refused = dg.materialize(_with_checks(defs), selection=S3_TRAINING, instance=instance,
                                 resources=resources, run_config=FAST_TRAINING, raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure).step_failure_data.error.message
    assert "creditcard.csv" in failure and "V7" in failure and "12346" in failure.replace(",", ""), failure
    assert [o["Key"] for o in all_objects(s3, plain_buckets["data"]) if o["Key"].startswith("assets/")] == []

    upload_frame(s3, plain_buckets["data"], "raw/creditcard.csv", raw, tmp_path)
    with dg.instance_for_test() as instance:
        result = dg.materialize(_with_checks(defs), selection=S3_TRAINING, instance=instance,
                                resources=resources, run_config=FAST_TRAINING)
    assert result.success
    keys = {o["Key"] for o in all_objects(s3, plain_buckets["data"]) if o["Key"].startswith("assets/")}
    for name in ("raw_transactions", "training_dataset", *SPLITS):
        assert f"assets/{name}.parts.json" in keys
        assert any(key.startswith(f"assets/parts/{name}/") and key.endswith(".parquet") for key in keys), name
    assert not any(".tmp-" in key for key in keys)
    model = resources["storage"].registry().load_production()
    assert model.manifest["training"]["engine"] == ENGINE
    assert model.manifest["data"]["train"]["rows"] + model.manifest["data"]["validation"]["rows"] \
        + model.manifest["data"]["test"]["rows"] == len(raw)
