"""The replication role (deployment/iam-replication-*.json): what S3 may do with it when it
copies the models and backups buckets to the recovery region, and nothing more.

Three checks, as for the host role: parliament, the exact grant per resource, and moto's
IAM enforcement. moto authorises a read of a bucket's replication rules as s3:ListBucket and
has no API for the replication-only actions (GetObjectVersionForReplication, ReplicateObject):
S3 itself calls those. So moto shows the denials (the role cannot read, write or delete
objects the ordinary way, nor touch other buckets) and the listing; the grant table below
pins the replication-only actions.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from fraud_assets_tests.services.s3_server import running_s3_server

from .conftest import DEPLOYMENT, run

POLICY_TEXT = (DEPLOYMENT / "iam-replication-policy.json").read_text()
POLICY = json.loads(POLICY_TEXT)
TRUST = json.loads((DEPLOYMENT / "iam-replication-trust-policy.json").read_text())
PARLIAMENT = DEPLOYMENT.parent / "fraud_assets_tests" / "deployment" / "_parliament_cli.py"
DR_REGION = "eu-west-1"  # the guide's example recovery region
SOURCES = {"models": "card-fraud-prod-models", "backups": "card-fraud-prod-backups"}
# `fraud s3 bootstrap` names a replica after its source and region unless told otherwise.
REPLICAS = {role: f"{name}-{DR_REGION}" for role, name in SOURCES.items()}
REGION = "us-east-1"


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("extra", [(), ("--include-community-auditors",)], ids=["core", "community"])
def test_parliament_finds_nothing_in_the_replication_policy(extra) -> None:
    result = run([sys.executable, str(PARLIAMENT), "--json", "--minimum_severity", "INFO", *extra],
                 input=POLICY_TEXT)
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode, result.stdout.strip()) == (0, "")


def test_only_s3_may_assume_the_replication_role() -> None:
    (statement,) = TRUST["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}


def _grants() -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in POLICY["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) == {"Sid", "Effect", "Action", "Resource"}, statement["Sid"]
        for resource in _as_list(statement["Resource"]):
            grants.setdefault(resource, set()).update(_as_list(statement["Action"]))
    return grants


def test_each_bucket_gets_exactly_what_replication_needs() -> None:
    expected = {}
    for role in SOURCES:
        expected[f"arn:aws:s3:::{SOURCES[role]}"] = {"s3:GetReplicationConfiguration", "s3:ListBucket"}
        expected[f"arn:aws:s3:::{SOURCES[role]}/*"] = {
            "s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
        }
        # No s3:ReplicateDelete: bootstrap does not replicate delete markers, so a deletion
        # in the primary region never reaches the replica.
        expected[f"arn:aws:s3:::{REPLICAS[role]}/*"] = {"s3:ReplicateObject", "s3:ReplicateTags"}
    assert _grants() == expected


def _error_code(call: Callable[[], object]) -> str | None:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


@pytest.fixture(scope="module")
def enforced():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        with running_s3_server() as endpoint:
            suffix = uuid.uuid4().hex[:8]
            names = {f"{role}": f"repl-{role}-{suffix}" for role in SOURCES}
            names |= {f"{role}_replica": f"repl-{role}-{suffix}-dr" for role in SOURCES}
            names["data"] = f"repl-data-{suffix}"
            text = POLICY_TEXT
            for role in SOURCES:  # replicas first: a source name is a prefix of its replica's
                text = text.replace(f"arn:aws:s3:::{REPLICAS[role]}", f"arn:aws:s3:::{names[role + '_replica']}")
                text = text.replace(f"arn:aws:s3:::{SOURCES[role]}", f"arn:aws:s3:::{names[role]}")
            assert "card-fraud-prod-" not in text
            admin = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
            for name in names.values():
                admin.create_bucket(Bucket=name)
                admin.put_object(Bucket=name, Key="models/v1/manifest.json", Body=b"{}")
            iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
            user = f"replication-{suffix}"
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="replication", PolicyDocument=text)
            keys = iam.create_access_key(UserName=user)["AccessKey"]
            client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                                  aws_access_key_id=keys["AccessKeyId"],
                                  aws_secret_access_key=keys["SecretAccessKey"])
            response = requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
            response.raise_for_status()
            previous = response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
            try:
                yield client, names
            finally:
                requests.post(f"{endpoint}/moto-api/reset-auth", data=str(previous).encode(),
                              timeout=10).raise_for_status()


def test_the_role_lists_the_sources(enforced) -> None:
    client, names = enforced
    for role in SOURCES:
        assert _error_code(lambda bucket=names[role]: client.list_objects_v2(Bucket=bucket)) is None


@pytest.mark.parametrize("call", [
    "read a source object",
    "write a replica object directly",
    "delete a replica object",
    "delete a source object",
    "list a replica",
    "list the data bucket",
    "read the data bucket",
])
def test_the_role_cannot_be_used_for_anything_else(enforced, call) -> None:
    client, names = enforced
    key = "models/v1/manifest.json"
    calls = {
        "read a source object": lambda: client.get_object(Bucket=names["models"], Key=key),
        "write a replica object directly": lambda: client.put_object(
            Bucket=names["models_replica"], Key="models/v2/manifest.json", Body=b"{}"),
        "delete a replica object": lambda: client.delete_object(Bucket=names["backups_replica"], Key=key),
        "delete a source object": lambda: client.delete_object(Bucket=names["backups"], Key=key),
        "list a replica": lambda: client.list_objects_v2(Bucket=names["models_replica"]),
        "list the data bucket": lambda: client.list_objects_v2(Bucket=names["data"]),
        "read the data bucket": lambda: client.get_object(Bucket=names["data"], Key=key),
    }
    assert _error_code(calls[call]) == "AccessDenied"
