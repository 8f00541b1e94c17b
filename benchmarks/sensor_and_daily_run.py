"""Incoming-sensor tick time over a large backlog, and what one daily scoring run writes.

Runs against a local S3 server (moto) on 127.0.0.1, so absolute times include moto's own
overhead; real S3 lists 1,000 keys per request as here.

    .venv/bin/python benchmarks/sensor_and_daily_run.py [--objects 5000] [--batch-rows 50000]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fraud_assets.definitions import build_definitions  # noqa: E402
from fraud_assets.defs.sensors import MAX_FILES_PER_TICK, build_incoming_sensor  # noqa: E402
from fraud_assets.synthetic.generate import generate_transactions  # noqa: E402
from fraud_assets_tests.services.s3_server import running_s3_server  # noqa: E402

DAY = "2025-03-04"


def configure(endpoint: str, tmp: str) -> dict[str, str]:
    names = {"data": "bench-data", "models": "bench-models", "predictions": "bench-predictions",
             "backups": "bench-backups"}
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1", FRAUD_ENV="production", FRAUD_S3_ENDPOINT_URL=endpoint,
        FRAUD_DATA_BUCKET=names["data"], FRAUD_MODELS_BUCKET=names["models"],
        FRAUD_PREDICTIONS_BUCKET=names["predictions"], FRAUD_BACKUP_BUCKET=names["backups"],
        FRAUD_LOCAL_DIR=tmp,
    )
    return names


def snapshot(s3, buckets) -> dict[tuple[str, str], tuple[str, int]]:
    state = {}
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                state[(bucket, item["Key"])] = (item["ETag"], item["Size"])
    return state


def sensor_ticks(s3, names, instance, objects: int) -> None:
    body = b"Time,V1\n1,2\n"
    for n in range(objects):
        s3.put_object(Bucket=names["data"], Key=f"incoming/{DAY}_{n:05d}.csv", Body=body)
    defs = build_definitions("production")
    resources = {k: v for k, v in defs.resources.items() if k in ("storage", "dataset")}
    sensor = build_incoming_sensor(running=False)
    cursor, timings, requested = None, [], 0
    while True:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        started = time.perf_counter()
        result = sensor(context)
        timings.append(time.perf_counter() - started)
        cursor = result.cursor
        files = sum(len(r.run_config["ops"]["daily_predictions"]["config"]["files"]) for r in result.run_requests)
        if not files:
            break
        requested += files
    print(f"sensor: {objects} objects under incoming/, {MAX_FILES_PER_TICK} files per tick")
    print(f"  ticks to drain: {len(timings) - 1}; files requested: {requested}")
    print(f"  tick seconds: first {timings[0]:.2f}, median {statistics.median(timings):.2f}, "
          f"max {max(timings):.2f} (Dagster's sensor timeout: 60)")
    print(f"  cursor size at the largest: {len(json.dumps({f'{DAY}_{n:05d}.csv': 'x' * 32 for n in range(objects)}))} bytes")
    for n in range(objects):
        s3.delete_object(Bucket=names["data"], Key=f"incoming/{DAY}_{n:05d}.csv")


def daily_run(s3, names, instance, batch_rows: int, tmp: str) -> None:
    raw = Path(tmp) / "creditcard.csv"
    generate_transactions(284_807, seed=3).to_csv(raw, index=False)
    s3.upload_file(str(raw), names["data"], "raw/creditcard.csv")
    defs = build_definitions("production")
    assert defs.resolve_job_def("training_job").execute_in_process(instance=instance).success
    batch = Path(tmp) / f"{DAY}_batch.csv"
    generate_transactions(batch_rows, seed=9, start_day=3, n_days=1, labels=False).to_csv(batch, index=False)
    s3.upload_file(str(batch), names["data"], f"incoming/{batch.name}")

    buckets = list(names.values())
    before = snapshot(s3, buckets)
    for job in ("scoring_job", "drift_job"):
        assert defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=DAY).success
    after = snapshot(s3, buckets)
    written = {key: value for key, value in after.items() if before.get(key) != value}
    removed = set(before) - set(after)
    print(f"daily run (scoring + drift) of one {batch_rows}-row batch ({batch.stat().st_size / 1e6:.1f} MB CSV):")
    for (bucket, key), (_, size) in sorted(written.items()):
        print(f"  wrote   s3://{bucket}/{key}  {size / 1e6:.3f} MB")
    for bucket, key in sorted(removed):
        print(f"  removed s3://{bucket}/{key}")
    total = sum(size for _, size in written.values())
    print(f"  total: {len(written)} objects, {total / 1e6:.2f} MB written; {len(removed)} removed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_s3_server() as endpoint:
        names = configure(endpoint, tmp)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        for name in names.values():
            s3.create_bucket(Bucket=name)
        with dg.instance_for_test() as instance:
            sensor_ticks(s3, names, instance, args.objects)
            daily_run(s3, names, instance, args.batch_rows, tmp)


if __name__ == "__main__":
    main()
