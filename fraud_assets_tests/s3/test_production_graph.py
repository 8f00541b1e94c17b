"""The whole graph in production wiring, every byte through the local S3 server."""

import io
import json

import dagster as dg
import pandas as pd

from ..graph.conftest import DAY, check_results, materialized, run_pipeline
from .conftest import all_objects, upload_frame


def keys(s3, bucket):
    return {item["Key"] for item in all_objects(s3, bucket)}


def test_whole_graph_on_s3(s3, s3_project, instance):
    result = run_pipeline(instance)
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "daily_predictions" in materialized(result)

    data = keys(s3, s3_project["data"])
    assert {"assets/train_split.parquet", "assets/validation_split.parquet",
            "assets/test_split.parquet", "assets/raw_transactions.parquet",
            f"assets/drift_statistics/{DAY}.json"} <= data
    # Scored batch files leave incoming/ so the prefix does not grow without bound.
    assert f"processed/{DAY}/{DAY}_morning.csv" in data and f"incoming/{DAY}_morning.csv" not in data

    models = keys(s3, s3_project["models"])
    production = json.loads(
        s3.get_object(Bucket=s3_project["models"], Key="models/production.json")["Body"].read()
    )
    version = production["version"]
    assert {f"models/{version}/model.ubj", f"models/{version}/manifest.json",
            f"models/{version}/preprocessing.json", "models/latest.json",
            "models/assets/preprocessing_pipeline.json"} <= models

    prediction_key = f"predictions/date={DAY}/{DAY}_morning.parquet"
    body = s3.get_object(Bucket=s3_project["predictions"], Key=prediction_key)["Body"].read()
    predictions = pd.read_parquet(io.BytesIO(body))
    assert len(predictions) == 3_000 and set(predictions["model_version"].astype(str)) == {version}

    # The catalog's locations are the objects written, as s3:// URIs.
    def uri(asset, partition=None):
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        if partition is not None:
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
            ).records
            event = record.event_log_entry
        return event.asset_materialization.metadata["dagster/uri"].value

    assert uri("train_split") == f"s3://{s3_project['data']}/assets/train_split.parquet"
    assert uri("fraud_model") == f"s3://{s3_project['models']}/models/{version}"
    assert uri("production_model") == f"s3://{s3_project['models']}/models/production.json"
    assert uri("daily_predictions", DAY) == f"s3://{s3_project['predictions']}/predictions/date={DAY}"

    # No temporary objects left anywhere, and everything the code wrote is encrypted.
    for bucket in s3_project.values():
        for item in all_objects(s3, bucket):
            assert ".tmp-" not in item["Key"], item["Key"]
            head = s3.head_object(Bucket=bucket, Key=item["Key"])
            assert head.get("ServerSideEncryption") == "AES256", (bucket, item["Key"])


def test_failed_batch_leaves_no_partial_predictions(s3, s3_project, instance, tmp_path):
    assert run_pipeline(instance).success
    # A second file for the same day whose bad row sits far into the file.
    frame = pd.read_csv(io.BytesIO(
        s3.get_object(Bucket=s3_project["data"], Key=f"processed/{DAY}/{DAY}_morning.csv")["Body"].read()
    ))
    frame["V4"] = frame["V4"].astype(object)
    frame.loc[2_900, "V4"] = "oops"
    upload_frame(s3, s3_project["data"], f"incoming/{DAY}_late.csv", frame, tmp_path)
    result = run_pipeline(instance, job="scoring_job")
    assert not check_results(result)["batch_files_valid"].passed
    predictions = keys(s3, s3_project["predictions"])
    assert not any("late" in key for key in predictions)
    assert not any(".tmp-" in key for key in predictions)
    data = keys(s3, s3_project["data"])
    assert f"quarantine/{DAY}_late.csv" in data
    reason = json.loads(s3.get_object(Bucket=s3_project["data"], Key=f"quarantine/{DAY}_late.csv.reason.json")["Body"].read())
    assert "'V4'" in reason["reason"] and "data row 2901" in reason["reason"]
