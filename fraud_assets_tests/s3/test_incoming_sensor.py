"""The incoming-file sensor against the local S3 server: ticks, cursor, quarantine, runs."""

import json

import dagster as dg
import pytest

from fraud_assets.definitions import build_definitions
from fraud_assets.defs import sensors
from fraud_assets.defs.sensors import build_incoming_sensor, read_cursor
from fraud_assets.synthetic.generate import generate_transactions

from ..graph.conftest import DAY, run_pipeline
from .conftest import all_objects

BATCH_CSV = generate_transactions(200, seed=5, start_day=3, n_days=1, labels=False).to_csv(index=False)


def put(s3, bucket, key, body=BATCH_CSV):
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ServerSideEncryption="AES256")


def tick(instance, cursor=None):
    defs = build_definitions("production")
    sensor = build_incoming_sensor(running=False)
    resources = {k: v for k, v in defs.resources.items() if k in ("storage", "dataset")}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = sensor(context)
    return result, result.cursor


def requested_files(result) -> list[str]:
    return sorted(
        name
        for request in result.run_requests
        for name in request.run_config["ops"]["daily_predictions"]["config"]["files"]
    )


def test_files_landing_together_are_each_requested_once(s3, plain_buckets, instance):
    for n in range(5):  # same second, very likely the same LastModified
        put(s3, plain_buckets["data"], f"incoming/{DAY}_part{n}.csv")
    first, cursor = tick(instance)
    assert requested_files(first) == [f"{DAY}_part{n}.csv" for n in range(5)]
    assert [r.partition_key for r in first.run_requests] == [DAY]
    again, cursor = tick(instance, cursor)
    assert again.run_requests == []

    # A late arrival, even stamped in the same second, is picked up alone.
    put(s3, plain_buckets["data"], f"incoming/{DAY}_late.csv")
    late, cursor = tick(instance, cursor)
    assert requested_files(late) == [f"{DAY}_late.csv"]
    # The same object uploaded again with identical bytes is not new.
    put(s3, plain_buckets["data"], f"incoming/{DAY}_late.csv")
    assert tick(instance, cursor)[0].run_requests == []


def test_replaced_file_content_is_requested_again(s3, plain_buckets, instance):
    put(s3, plain_buckets["data"], f"incoming/{DAY}_a.csv")
    _, cursor = tick(instance)
    put(s3, plain_buckets["data"], f"incoming/{DAY}_a.csv", BATCH_CSV.replace("\n", "\r\n"))
    result, _ = tick(instance, cursor)
    assert requested_files(result) == [f"{DAY}_a.csv"]


def test_misnamed_files_are_quarantined_and_the_stream_goes_on(s3, plain_buckets, instance):
    put(s3, plain_buckets["data"], "incoming/transactions.csv")
    put(s3, plain_buckets["data"], f"incoming/{DAY}_notes.txt", "hello")
    put(s3, plain_buckets["data"], "incoming/1999-01-01_old.csv")
    put(s3, plain_buckets["data"], f"incoming/{DAY}_good.csv")
    result, _ = tick(instance)
    assert requested_files(result) == [f"{DAY}_good.csv"]
    keys = {item["Key"] for item in all_objects(s3, plain_buckets["data"])}
    for name in ("transactions.csv", f"{DAY}_notes.txt", "1999-01-01_old.csv"):
        assert f"quarantine/{name}" in keys and f"incoming/{name}" not in keys
        reason = json.loads(
            s3.get_object(Bucket=plain_buckets["data"], Key=f"quarantine/{name}.reason.json")["Body"].read()
        )
        assert name in reason["reason"]


def test_backlog_drains_over_ticks(s3, plain_buckets, instance, monkeypatch):
    monkeypatch.setattr(sensors, "MAX_FILES_PER_TICK", 7)
    for n in range(20):
        put(s3, plain_buckets["data"], f"incoming/{DAY}_{n:03d}.csv", "Time\n1\n")
    seen, cursor = [], None
    for _ in range(3):
        result, cursor = tick(instance, cursor)
        seen += requested_files(result)
    assert len(seen) == 20 and len(set(seen)) == 20
    assert tick(instance, cursor)[0].run_requests == []


def test_requested_run_scores_the_file_and_moves_it(s3, s3_project, instance):
    assert run_pipeline(instance).success  # trains a production model, scores the morning file
    put(s3, s3_project["data"], f"incoming/{DAY}_evening.csv")
    result, cursor = tick(instance)
    (request,) = result.run_requests
    defs = build_definitions("production")
    run = defs.resolve_job_def("scoring_job").execute_in_process(
        instance=instance, partition_key=request.partition_key, run_config=request.run_config,
        tags=request.tags,
    )
    assert run.success
    metadata = instance.get_latest_materialization_event(dg.AssetKey("daily_predictions")).asset_materialization.metadata
    assert metadata["newly_scored_files"].value == 1
    assert metadata["rows"].value == 3_000 + 200  # the whole day, both files
    predictions = {item["Key"] for item in all_objects(s3, s3_project["predictions"])}
    assert f"predictions/date={DAY}/{DAY}_evening.parquet" in predictions
    data = {item["Key"] for item in all_objects(s3, s3_project["data"])}
    assert f"processed/{DAY}/{DAY}_evening.csv" in data and f"incoming/{DAY}_evening.csv" not in data
    # Scored and moved: the cursor forgets it, and nothing is requested again.
    again, cursor = tick(instance, cursor)
    assert again.run_requests == [] and read_cursor(cursor)[1] == {}


@pytest.mark.parametrize("running", [True, False])
def test_sensor_runs_by_default_only_in_production(running):
    status = build_incoming_sensor(running=running).default_status
    assert (status == dg.DefaultSensorStatus.RUNNING) is running
