"""Production wiring against a local S3 server: unique buckets per test, real HTTP."""

import uuid
from pathlib import Path

import boto3
import pytest

from fraud_assets.core.data.tables import write_table
from fraud_assets.synthetic.generate import generate_transactions

from ..graph.conftest import DAY, FRAUD_RATE, instance  # noqa: F401  (shared fixture)


@pytest.fixture
def s3(s3_endpoint):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def buckets(s3_endpoint, monkeypatch, tmp_path) -> dict[str, str]:
    """Fresh bucket names for this test, and the production environment pointing at them."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "data": f"fraud-data-{suffix}",
        "models": f"fraud-models-{suffix}",
        "predictions": f"fraud-predictions-{suffix}",
        "backups": f"fraud-backups-{suffix}",
    }
    monkeypatch.setenv("FRAUD_ENV", "production")
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("FRAUD_DATA_BUCKET", names["data"])
    monkeypatch.setenv("FRAUD_MODELS_BUCKET", names["models"])
    monkeypatch.setenv("FRAUD_PREDICTIONS_BUCKET", names["predictions"])
    monkeypatch.setenv("FRAUD_BACKUP_BUCKET", names["backups"])
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(tmp_path))
    for name in ("FRAUD_PUSHGATEWAY_URL", "FRAUD_SLACK_WEBHOOK_URL", "FRAUD_AUPRC_FLOOR", "FRAUD_KMS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    return names


@pytest.fixture
def plain_buckets(s3, buckets) -> dict[str, str]:
    """Buckets without default encryption: whatever is encrypted, the code encrypted."""
    for name in buckets.values():
        s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=buckets["models"], VersioningConfiguration={"Status": "Enabled"})
    return buckets


def upload_frame(s3, bucket: str, key: str, frame, tmp_path: Path) -> None:
    local = tmp_path / "upload" / Path(key).name
    write_table(frame, str(local))
    s3.upload_file(str(local), bucket, key, ExtraArgs={"ServerSideEncryption": "AES256"})


@pytest.fixture
def s3_project(s3, plain_buckets, tmp_path) -> dict[str, str]:
    raw = generate_transactions(40_000, seed=3, n_days=2, fraud_rate=FRAUD_RATE)
    upload_frame(s3, plain_buckets["data"], "raw/creditcard.csv", raw, tmp_path)
    batch = generate_transactions(3_000, seed=1, start_day=3, n_days=1, labels=False)
    upload_frame(s3, plain_buckets["data"], f"incoming/{DAY}_morning.csv", batch, tmp_path)
    return plain_buckets


def all_objects(s3, bucket: str) -> list[dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item for page in pages for item in page.get("Contents", [])]
