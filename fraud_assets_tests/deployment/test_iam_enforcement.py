"""deployment/iam-role-policy.json evaluated by a policy engine, not by our own reading of it.

A local S3 server (moto's server mode, real HTTP and SigV4) is switched to IAM enforcement;
an IAM user gets the role policy inline, with the production bucket names replaced by this
test's buckets, and a boto3 client signed with that user's keys makes the S3 calls the
pipeline makes (they must succeed) and calls it must never be able to make (AccessDenied).

What moto 5.2 can and cannot evaluate (checked in moto/iam/access_control.py and
moto/iam/policy_conditions.py):

* It matches Action and Resource (with `*` wildcards) and honours default deny, so object
  and bucket-level permissions below are really enforced.
* Conditions: only `StringEquals` is implemented, and the only request value moto fills in
  is `sts:ExternalId`. A `StringLike` on `s3:prefix` is ignored, so the four ListBucket /
  ListBucketVersions statements act as if unconditioned here: moto cannot prove that a
  listing outside the allowed prefixes is denied. The `cloudwatch:namespace` condition is
  likewise not evaluated. Those rules are checked by the offline evaluator in
  test_iam_policies.py and by parliament instead; `test_listing_outside_the_prefixes` below
  records the gap as an expected failure (it turns into XPASS if moto learns it).
* CopyObject is authorised as PutObject on the destination only; AWS also requires
  GetObject on the source. Every copy the pipeline makes reads a key it may read anyway.
* CloudWatch Logs and metrics calls are authorised against resource "*", which the
  policy's log-group ARNs never match, so they are not exercised here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from fraud_assets_tests.services.s3_server import running_s3_server

from .conftest import DEPLOYMENT

REGION = "us-east-1"
PRODUCTION_NAMES = {
    "data": "card-fraud-prod-data",
    "models": "card-fraud-prod-models",
    "predictions": "card-fraud-prod-predictions",
    "backups": "card-fraud-prod-backups",
}
DAY = "2025-03-04"


def _policy_for(buckets: dict[str, str]) -> str:
    """The role policy with the production bucket names replaced by the test's buckets."""
    text = (DEPLOYMENT / "iam-role-policy.json").read_text()
    for role, production in PRODUCTION_NAMES.items():
        assert f"arn:aws:s3:::{production}" in text, production
        # Replace whole ARNs only: "card-fraud-prod-data" is not a prefix of another name,
        # but anchoring on the ARN keeps the substitution honest.
        text = text.replace(f"arn:aws:s3:::{production}", f"arn:aws:s3:::{buckets[role]}")
    assert "card-fraud-prod-" not in text
    return text


class Stack:
    def __init__(self, endpoint: str, buckets: dict[str, str], other: str, keys: dict, bare: dict):
        self.endpoint = endpoint
        self.buckets = buckets
        self.other = other
        self.keys = keys
        self.bare = bare

    def client(self, keys: dict | None = None):
        keys = keys or self.keys
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
        )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as patch:
        # Nothing here may reach real AWS or pick up a developer's profile.
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        with running_s3_server() as endpoint:
            suffix = uuid.uuid4().hex[:8]
            buckets = {role: f"iam-{role}-{suffix}" for role in PRODUCTION_NAMES}
            other = f"iam-unrelated-{suffix}"
            # Set-up runs before enforcement is switched on: the admin needs no policy.
            admin = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
            for name in [*buckets.values(), other]:
                admin.create_bucket(Bucket=name)
            admin.put_bucket_versioning(
                Bucket=buckets["models"], VersioningConfiguration={"Status": "Enabled"}
            )
            seed = {
                (buckets["data"], "raw/creditcard.csv"): b"Time,V1,Amount,Class\n0,0.1,1.0,0\n",
                (buckets["data"], f"incoming/{DAY}_x.csv"): b"Time,V1,Amount\n0,0.1,1.0\n",
                (buckets["data"], "raw/other.csv"): b"x",
                (buckets["models"], "models/v1/model.json"): b"{}",
                (buckets["backups"], "backups/v1/model.json"): b"{}",
                (other, "raw/creditcard.csv"): b"x",
            }
            for (bucket, key), body in seed.items():
                admin.put_object(Bucket=bucket, Key=key, Body=body)

            iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
            user = f"card-fraud-host-{suffix}"
            iam.create_user(UserName=user)
            iam.put_user_policy(
                UserName=user, PolicyName="CardFraudRolePolicy", PolicyDocument=_policy_for(buckets)
            )
            keys = iam.create_access_key(UserName=user)["AccessKey"]
            # A user with no policy at all: shows that enforcement is on.
            iam.create_user(UserName=f"nobody-{suffix}")
            bare = iam.create_access_key(UserName=f"nobody-{suffix}")["AccessKey"]
            yield Stack(endpoint, buckets, other, keys, bare)


@pytest.fixture
def enforced(stack: Stack) -> Iterator[Stack]:
    """IAM enforcement on for this test only: moto's server equivalent of
    `set_initial_no_auth_action_count(0)` (moto backends are shared by every server in
    the process, so the previous value is restored even if the test fails)."""
    response = requests.post(f"{stack.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    response.raise_for_status()
    previous = response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    try:
        yield stack
    finally:
        requests.post(
            f"{stack.endpoint}/moto-api/reset-auth", data=str(previous).encode(), timeout=10
        ).raise_for_status()


def _error_code(call: Callable[[], object]) -> str | None:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


def test_enforcement_is_on(enforced: Stack) -> None:
    # Without this, every "allowed" test below would pass against an open server.
    bare = enforced.client(enforced.bare)
    data = enforced.buckets["data"]
    assert (
        _error_code(lambda: bare.get_object(Bucket=data, Key="raw/creditcard.csv"))
        == "AccessDenied"
    )
    stranger = enforced.client({"AccessKeyId": "AKIANOTAREALKEY00000", "SecretAccessKey": "x"})
    assert _error_code(lambda: stranger.get_object(Bucket=data, Key="raw/creditcard.csv")) == (
        "InvalidAccessKeyId"
    )


def test_pipeline_calls_are_allowed(enforced: Stack) -> None:
    s3 = enforced.client()
    data, models, predictions, backups = (
        enforced.buckets[r] for r in ("data", "models", "predictions", "backups")
    )

    def atomic_write(bucket: str, directory: str, name: str, body: bytes) -> None:
        # fraud_assets.core.storage.locations.atomic_path: write ".<name>.tmp-<hex>", then s3fs's mv,
        # which is CopyObject followed by DeleteObject of the temporary key.
        temporary = f"{directory}/.{name}.tmp-{uuid.uuid4().hex[:12]}"
        s3.put_object(Bucket=bucket, Key=temporary, Body=body, ServerSideEncryption="AES256")
        s3.copy_object(
            Bucket=bucket,
            Key=f"{directory}/{name}",
            CopySource={"Bucket": bucket, "Key": temporary},
        )
        s3.delete_object(Bucket=bucket, Key=temporary)

    # s3fs resolves each bucket's region first.
    for bucket in enforced.buckets.values():
        s3.get_bucket_location(Bucket=bucket)

    # raw_transactions reads the labelled dataset.
    assert s3.get_object(Bucket=data, Key="raw/creditcard.csv")["Body"].read().startswith(b"Time")

    # The sensor and daily_predictions list and read the day's batch files, then move
    # them to processed/ (copy + delete) or quarantine/ with a reason file.
    listed = s3.list_objects_v2(Bucket=data, Prefix="incoming/")
    assert [o["Key"] for o in listed["Contents"]] == [f"incoming/{DAY}_x.csv"]
    s3.get_object(Bucket=data, Key=f"incoming/{DAY}_x.csv")
    s3.copy_object(
        Bucket=data,
        Key=f"processed/{DAY}/{DAY}_x.csv",
        CopySource={"Bucket": data, "Key": f"incoming/{DAY}_x.csv"},
    )
    s3.delete_object(Bucket=data, Key=f"incoming/{DAY}_x.csv")
    s3.put_object(Bucket=data, Key=f"quarantine/{DAY}_bad.csv", Body=b"x")
    atomic_write(data, "quarantine", f"{DAY}_bad.csv.reason.json", b"{}")

    # The data-side IO manager: splits as Parquet under assets/, atomically, read back
    # downstream; large files go up in parts (and a failed upload is aborted).
    atomic_write(data, "assets", "train_split.parquet", b"PAR1")
    s3.get_object(Bucket=data, Key="assets/train_split.parquet")
    s3.list_objects_v2(Bucket=data, Prefix="assets/")
    upload = s3.create_multipart_upload(Bucket=data, Key="assets/.big.parquet.tmp-0123456789ab")
    s3.abort_multipart_upload(
        Bucket=data, Key="assets/.big.parquet.tmp-0123456789ab", UploadId=upload["UploadId"]
    )

    # Dagster's S3 compute-log manager.
    s3.put_object(Bucket=data, Key="dagster/compute-logs/storage/run/step.out", Body=b"log")
    s3.get_object(Bucket=data, Key="dagster/compute-logs/storage/run/step.out")
    s3.list_objects_v2(Bucket=data, Prefix="dagster/compute-logs/storage/")

    # The model registry: a version folder, the model-side IO manager's assets/, and the
    # latest/production pointers written atomically and read back (also by version).
    atomic_write(models, "models/20250304-0300", "model.json", b"{}")
    s3.get_object(Bucket=models, Key="models/20250304-0300/model.json")
    atomic_write(models, "models/assets", "preprocessing_pipeline.json", b"{}")
    atomic_write(models, "models", "production.json", b'{"version": "20250304-0300"}')
    head = s3.head_object(Bucket=models, Key="models/production.json")
    s3.get_object(Bucket=models, Key="models/production.json", VersionId=head["VersionId"])
    s3.list_objects_v2(Bucket=models, Prefix="models/", Delimiter="/")
    s3.list_object_versions(Bucket=models, Prefix="models/production.json")

    # Scoring writes predictions and a summary per batch; drift writes its report.
    atomic_write(predictions, f"predictions/date={DAY}", f"{DAY}_x.parquet", b"PAR1")
    s3.put_object(Bucket=predictions, Key=f"predictions/date={DAY}/{DAY}_x.stats.json", Body=b"{}")
    s3.get_object(Bucket=predictions, Key=f"predictions/date={DAY}/{DAY}_x.stats.json")
    s3.list_objects_v2(Bucket=predictions, Prefix=f"predictions/date={DAY}/")

    # `fraud model backup` / `restore`.
    atomic_write(backups, "backups/20250304-0300", "model.json", b"{}")
    s3.get_object(Bucket=backups, Key="backups/v1/model.json")
    s3.list_objects_v2(Bucket=backups, Prefix="backups/")


@pytest.mark.parametrize(
    "case",
    [
        # Training data and processed batches are never deleted or overwritten by the host.
        (
            "DeleteObject raw dataset",
            lambda s, b, o: s.delete_object(Bucket=b["data"], Key="raw/creditcard.csv"),
        ),
        (
            "PutObject raw dataset",
            lambda s, b, o: s.put_object(Bucket=b["data"], Key="raw/creditcard.csv", Body=b"x"),
        ),
        (
            "GetObject other raw file",
            lambda s, b, o: s.get_object(Bucket=b["data"], Key="raw/other.csv"),
        ),
        (
            "PutObject outside the prefixes",
            lambda s, b, o: s.put_object(Bucket=b["data"], Key="elsewhere/x", Body=b"x"),
        ),
        (
            "DeleteObject processed batch",
            lambda s, b, o: s.delete_object(Bucket=b["data"], Key=f"processed/{DAY}/{DAY}_x.csv"),
        ),
        # Model history and backups are append-only from the host.
        (
            "DeleteObject model version",
            lambda s, b, o: s.delete_object(Bucket=b["models"], Key="models/v1/model.json"),
        ),
        (
            "DeleteObject backup",
            lambda s, b, o: s.delete_object(Bucket=b["backups"], Key="backups/v1/model.json"),
        ),
        (
            "PutObject backups outside prefix",
            lambda s, b, o: s.put_object(Bucket=b["backups"], Key="elsewhere/x", Body=b"x"),
        ),
        # Other buckets.
        (
            "PutObject in another bucket",
            lambda s, b, o: s.put_object(Bucket=o, Key="assets/x", Body=b"x"),
        ),
        (
            "GetObject from another bucket",
            lambda s, b, o: s.get_object(Bucket=o, Key="raw/creditcard.csv"),
        ),
        ("ListBucket another bucket", lambda s, b, o: s.list_objects_v2(Bucket=o, Prefix="raw/")),
        ("ListAllMyBuckets", lambda s, b, o: s.list_buckets()),
        # Bucket administration belongs to the operator running `fraud s3 bootstrap`.
        ("CreateBucket", lambda s, b, o: s.create_bucket(Bucket=f"{o}-new")),
        ("DeleteBucket", lambda s, b, o: s.delete_bucket(Bucket=b["models"])),
        (
            "PutBucketPolicy",
            lambda s, b, o: s.put_bucket_policy(
                Bucket=b["data"],
                Policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": "s3:GetObject",
                                "Resource": f"arn:aws:s3:::{b['data']}/*",
                            }
                        ],
                    }
                ),
            ),
        ),
        (
            "PutBucketVersioning",
            lambda s, b, o: s.put_bucket_versioning(
                Bucket=b["models"], VersioningConfiguration={"Status": "Suspended"}
            ),
        ),
        (
            "PutBucketLifecycle",
            lambda s, b, o: s.put_bucket_lifecycle_configuration(
                Bucket=b["predictions"],
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "x",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "Expiration": {"Days": 1},
                        }
                    ]
                },
            ),
        ),
    ],
    ids=lambda case: case[0],
)
def test_calls_outside_the_pipeline_are_denied(enforced: Stack, case) -> None:
    _, call = case
    s3 = enforced.client()
    assert _error_code(lambda: call(s3, enforced.buckets, enforced.other)) == "AccessDenied"


@pytest.mark.xfail(
    reason="moto 5.2 ignores StringLike conditions, so the s3:prefix limits on ListBucket "
    "are not evaluated; test_iam_policies.py checks them offline",
    strict=True,
)
def test_listing_outside_the_prefixes(enforced: Stack) -> None:
    s3 = enforced.client()
    code = _error_code(
        lambda: s3.list_objects_v2(Bucket=enforced.buckets["data"], Prefix="secret/")
    )
    assert code == "AccessDenied"
