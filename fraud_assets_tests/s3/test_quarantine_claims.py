"""On S3 a quarantine claims its name with a conditional write of its reason, so two runs
rejecting files of one name at once cannot both take it, and an interrupted quarantine of the
same file is finished rather than claimed again."""

from __future__ import annotations

import json

import pytest

from fraud_assets.definitions import build_resources
from fraud_assets.defs import batches

pytestmark = pytest.mark.integration


def _put(s3, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")


def _text(s3, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def test_names_taken_or_claimed_by_other_runs_are_left_to_them(s3, plain_buckets, monkeypatch):
    bucket = plain_buckets["data"]
    data = build_resources("production")["storage"].data()
    # Another run quarantined a file of this name, and a third claimed day_x~2 and is moving its
    # file there: the probe of neither name can be trusted, so this run must not look.
    _put(s3, bucket, "quarantine/day_x.csv", b"the other run's file")
    _put(s3, bucket, "quarantine/day_x.csv.reason.json", json.dumps({"source": "s3://elsewhere/a"}).encode())
    _put(s3, bucket, "quarantine/day_x~2.csv.reason.json", json.dumps({"source": "s3://elsewhere/b"}).encode())
    _put(s3, bucket, "incoming/day_x.csv", b"this run's file")
    monkeypatch.setattr(type(data.fs), "exists", lambda self, path, **kwargs: False)
    moved = batches.quarantine(data, data.path("incoming/day_x.csv"), "quarantine", "bad")
    monkeypatch.undo()
    assert moved == data.path("quarantine/day_x~3.csv")
    assert _text(s3, bucket, "quarantine/day_x.csv") == "the other run's file"
    assert json.loads(_text(s3, bucket, "quarantine/day_x~2.csv.reason.json"))["source"] == "s3://elsewhere/b"
    assert _text(s3, bucket, "quarantine/day_x~3.csv") == "this run's file"
    reason = json.loads(_text(s3, bucket, "quarantine/day_x~3.csv.reason.json"))
    assert reason["reason"] == "bad" and reason["file"] == "day_x~3.csv"
    assert reason["source"] == f"s3://{bucket}/incoming/day_x.csv"
    encryption = s3.head_object(Bucket=bucket, Key="quarantine/day_x~3.csv.reason.json")["ServerSideEncryption"]
    assert encryption in ("AES256", "aws:kms")
    assert "incoming/day_x.csv" not in {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}


def test_an_interrupted_quarantine_of_the_same_file_is_finished(s3, plain_buckets):
    bucket = plain_buckets["data"]
    data = build_resources("production")["storage"].data()
    # Killed after its claim, before the move.
    source = f"s3://{bucket}/incoming/day_y.csv"
    _put(s3, bucket, "quarantine/day_y.csv.reason.json", json.dumps({"source": source, "reason": "late"}).encode())
    _put(s3, bucket, "incoming/day_y.csv", b"interrupted")
    moved = batches.quarantine(data, data.path("incoming/day_y.csv"), "quarantine", "late")
    assert moved == data.path("quarantine/day_y.csv")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"quarantine/day_y.csv", "quarantine/day_y.csv.reason.json"}
    assert _text(s3, bucket, "quarantine/day_y.csv") == "interrupted"
