"""A backfill of ``daily_predictions`` is one run over its whole range. With the ``dask``
resource pointed at real workers, that run spreads the range's files over them, and every
object it leaves in S3 (predictions, summaries, quarantined files and their reasons, files
moved to ``processed/``) is the one the same range leaves when scored in one process."""

from __future__ import annotations

import io
import json

import dagster as dg
import pandas as pd
import pytest

from fraud_assets.definitions import build_definitions
from fraud_assets.defs import catalog
from fraud_assets.defs.resources import DaskCluster
from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.graph.conftest import FAST_TRAINING, FRAUD_RATE, run_pipeline
from fraud_assets_tests.s3.conftest import all_objects, buckets, plain_buckets, s3, upload_frame  # noqa: F401

pytestmark = [pytest.mark.dask, pytest.mark.integration, pytest.mark.timeout(900)]

DAYS = ["2025-03-04", "2025-03-05", "2025-03-06"]
BAD_FILE = f"{DAYS[1]}_late.csv"


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _land_batches(client, bucket: str, tmp_path) -> list[str]:
    names = []
    for number, day in enumerate(DAYS):
        for part, suffix in enumerate(("csv", "parquet")):
            frame = generate_transactions(6_000, seed=40 + 2 * number + part, start_day=3 + number, n_days=1,
                                          labels=False)
            name = f"{day}_part{part}.{suffix}"
            upload_frame(client, bucket, f"incoming/{name}", frame, tmp_path)
            names.append(name)
    bad = generate_transactions(6_000, seed=60, start_day=4, n_days=1, labels=False)
    bad["V4"] = bad["V4"].astype(object)
    bad.loc[4_321, "V4"] = "oops"
    upload_frame(client, bucket, f"incoming/{BAD_FILE}", bad, tmp_path)
    return names


def _backfill(instance, dask: DaskCluster, asset: str = "daily_predictions") -> dg.ExecuteInProcessResult:
    defs = build_definitions("production")
    return dg.materialize(
        [defs.get_assets_def(asset)],
        instance=instance,
        resources={**defs.resources, "dask": dask},
        # What a single-run backfill of the range from the UI puts on its run.
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
        raise_on_error=False,
    )


def _left_behind(client, names: dict[str, str]) -> dict[str, object]:
    """What a run leaves: each prediction's rows, each summary without its timing, each file's
    place and each quarantine reason."""
    state: dict[str, object] = {}
    for item in all_objects(client, names["predictions"]):
        body = client.get_object(Bucket=names["predictions"], Key=item["Key"])["Body"].read()
        if item["Key"].endswith(".parquet"):
            state[item["Key"]] = pd.read_parquet(io.BytesIO(body))
        elif item["Key"].endswith(".stats.json"):
            summary = json.loads(body)
            summary.pop("seconds", None)
            state[item["Key"]] = summary
        else:
            state[item["Key"]] = body
    for item in all_objects(client, names["data"]):
        key = item["Key"]
        if key.endswith(".reason.json"):
            reason = json.loads(client.get_object(Bucket=names["data"], Key=key)["Body"].read())
            state[key] = reason["reason"]
        elif key.startswith(("incoming/", "processed/", "quarantine/")):
            state[key] = "present"
    return state


def _put_back(client, names: dict[str, str]) -> None:
    """The range as it was before scoring: files back in incoming/, no predictions."""
    for item in all_objects(client, names["predictions"]):
        client.delete_object(Bucket=names["predictions"], Key=item["Key"])
    for item in all_objects(client, names["data"]):
        key = item["Key"]
        if key.endswith(".reason.json"):
            client.delete_object(Bucket=names["data"], Key=key)
        elif key.startswith(("processed/", "quarantine/")):
            name = key.rsplit("/", 1)[-1]
            client.copy_object(Bucket=names["data"], Key=f"incoming/{name}",
                           CopySource={"Bucket": names["data"], "Key": key})
            client.delete_object(Bucket=names["data"], Key=key)


def _day_rows(instance, asset: str = "daily_predictions", figure: str = "rows") -> dict[str, object]:
    rows = {}
    for day in DAYS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1
        ).records
        rows[day] = records[0].event_log_entry.asset_materialization.metadata[figure].value
    return rows


def test_a_backfill_scores_its_range_across_the_workers_as_one_process_does(
    s3, plain_buckets, tmp_path, instance, dask_cluster  # noqa: F811
):
    assert dg.BackfillPolicy.single_run() == build_definitions("production").get_assets_def(
        "daily_predictions").backfill_policy
    raw = generate_transactions(40_000, seed=3, n_days=2, fraud_rate=FRAUD_RATE)
    upload_frame(s3, plain_buckets["data"], "raw/creditcard.csv", raw, tmp_path)
    assert run_pipeline(instance, env="production", job="training_job", run_config=FAST_TRAINING).success
    names = _land_batches(s3, plain_buckets["data"], tmp_path)

    one_process = _backfill(instance, DaskCluster())
    assert one_process.success
    expected, expected_rows = _left_behind(s3, plain_buckets), _day_rows(instance)
    _put_back(s3, plain_buckets)

    on_cluster = _backfill(instance, DaskCluster(scheduler=dask_cluster.address))
    assert on_cluster.success
    materialized = on_cluster.asset_materializations_for_node("daily_predictions")
    assert sorted(m.partition for m in materialized) == DAYS
    assert {m.metadata["scored_on"].value for m in materialized} == {"dask"}
    found = _left_behind(s3, plain_buckets)

    assert found.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(found[key], value)
        else:
            assert found[key] == value, key
    # Each good file scored once and moved once; the bad one quarantined with row and column.
    assert {key for key in found if key.startswith("processed/")} == {
        f"processed/{name[:10]}/{name}" for name in names
    }
    assert not [key for key in found if key.startswith("incoming/")]
    reason = found[f"quarantine/{BAD_FILE}.reason.json"]
    assert BAD_FILE in reason and "V4" in reason
    # One materialisation per day of the range, each with that day's own figures.
    assert _day_rows(instance) == expected_rows == {day: 12_000 for day in DAYS}
    check = on_cluster.get_asset_check_evaluations()[0]
    assert not check.passed and check.metadata["rejected_files"].value == 1

    # The challenger's shadow scores of the range, on the workers in one run too. With the
    # serving model as the challenger they must be production's predictions, file for file.
    registry = build_definitions("production").resources["storage"].registry()
    registry.set_challenger(registry.production_version(), reason="test")
    assert _backfill(instance, DaskCluster(scheduler=dask_cluster.address), "challenger_predictions").success
    shadowed = _left_behind(s3, plain_buckets)
    served = {key: frame for key, frame in found.items() if key.startswith("predictions/") and key.endswith(".parquet")}
    assert len(served) == 2 * len(DAYS)
    for key, frame in served.items():
        pd.testing.assert_frame_equal(shadowed[key.replace("predictions/", "challenger_predictions/", 1)], frame)
    assert _day_rows(instance, "challenger_predictions", catalog.PARTITION_ROW_COUNT) == expected_rows
    assert set(_day_rows(instance, "challenger_predictions", "scored_on").values()) == {"dask"}
