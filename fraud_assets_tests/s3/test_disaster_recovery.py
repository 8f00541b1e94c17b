"""Disaster recovery across two regions: two local S3 servers, each in its own process, stand
for the primary region (us-east-1) and the recovery region (eu-west-1).

moto stores a bucket's replication configuration but never copies an object: where a test
needs the replicas filled, it copies the objects itself, as S3 replication would (same keys,
same encryption), and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import boto3
import httpx
import pytest

from fraud_assets import settings
from fraud_assets_tests.service.server import ServiceProcess
from fraud_assets_tests.services.s3_server import s3_server_process

from .test_buckets_and_registry import fraud

PRIMARY_REGION, DR_REGION = "us-east-1", "eu-west-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/card-fraud-replication"
FRAUD = Path(sys.executable).parent / "fraud"


@pytest.fixture
def regions(tmp_path, monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with (s3_server_process(tmp_path / "primary.log") as primary,
          s3_server_process(tmp_path / "dr.log") as dr):
        yield SimpleNamespace(
            primary=primary, dr=dr,
            primary_s3=boto3.client("s3", endpoint_url=primary.url, region_name=PRIMARY_REGION),
            dr_s3=boto3.client("s3", endpoint_url=dr.url, region_name=DR_REGION),
        )


@pytest.fixture
def names(regions, monkeypatch, tmp_path) -> dict[str, str]:
    """Production settings with a DR region; the primary and replica bucket names."""
    suffix = uuid.uuid4().hex[:8]
    buckets = {role: f"fraud-{role}-{suffix}" for role in ("data", "models", "predictions", "backups")}
    environment = {
        "FRAUD_ENV": "production",
        "FRAUD_LOCAL_DIR": str(tmp_path),
        "AWS_REGION": PRIMARY_REGION,
        "FRAUD_S3_ENDPOINT_URL": regions.primary.url,
        "FRAUD_DATA_BUCKET": buckets["data"],
        "FRAUD_MODELS_BUCKET": buckets["models"],
        "FRAUD_PREDICTIONS_BUCKET": buckets["predictions"],
        "FRAUD_BACKUP_BUCKET": buckets["backups"],
        "FRAUD_DR_REGION": DR_REGION,
        "FRAUD_DR_S3_ENDPOINT_URL": regions.dr.url,
        "FRAUD_REPLICATION_ROLE_ARN": ROLE_ARN,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for name in ("FRAUD_KMS_KEY_ID", "FRAUD_DR_KMS_KEY_ID", "FRAUD_MODELS_REPLICA_BUCKET",
                 "FRAUD_BACKUP_REPLICA_BUCKET", "FRAUD_PUSHGATEWAY_URL", "FRAUD_SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    return {**buckets, "models_replica": f"{buckets['models']}-{DR_REGION}",
            "backups_replica": f"{buckets['backups']}-{DR_REGION}"}


def bucket_names(client) -> set[str]:
    return {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}


def replicate(source_client, source: str, target_client, target: str, *, skip: tuple = ()) -> list[str]:
    """Copy the current objects of ``source`` into ``target`` as S3 replication does (same
    key, same server-side encryption): done by the test, because moto does not replicate."""
    copied = []
    for page in source_client.get_paginator("list_objects_v2").paginate(Bucket=source):
        for item in page.get("Contents", []):
            if item["Key"] in skip:
                continue
            found = source_client.get_object(Bucket=source, Key=item["Key"])
            target_client.put_object(Bucket=target, Key=item["Key"], Body=found["Body"].read(),
                                     ServerSideEncryption=found.get("ServerSideEncryption", "AES256"))
            copied.append(item["Key"])
    return copied


def test_bootstrap_replicates_models_and_backups_to_the_dr_region(regions, names, capsys):
    assert fraud("s3", "bootstrap") == 0
    first = capsys.readouterr().out
    assert f"{names['models_replica']}: created" in first
    assert f"{names['models']}: replicating to {names['models_replica']} ({DR_REGION})" in first

    # The replicas live in the other region only.
    replicas = {names["models_replica"], names["backups_replica"]}
    assert replicas <= bucket_names(regions.dr_s3)
    assert not replicas & bucket_names(regions.primary_s3)
    for replica in replicas:
        dr = regions.dr_s3
        assert dr.get_bucket_location(Bucket=replica)["LocationConstraint"] == DR_REGION
        assert dr.get_bucket_versioning(Bucket=replica)["Status"] == "Enabled"
        rule = dr.get_bucket_encryption(Bucket=replica)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert all(dr.get_public_access_block(Bucket=replica)["PublicAccessBlockConfiguration"].values())

    for role in ("models", "backups"):
        configuration = regions.primary_s3.get_bucket_replication(Bucket=names[role])["ReplicationConfiguration"]
        assert configuration["Role"] == ROLE_ARN
        (rule,) = configuration["Rules"]
        assert rule["Status"] == "Enabled"
        assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::{names[role + '_replica']}"
        assert rule["Destination"]["ReplicationTime"]["Time"]["Minutes"] == 15
    for role in ("data", "predictions"):  # rebuilt by the pipeline, not replicated
        with pytest.raises(regions.primary_s3.exceptions.ClientError):
            regions.primary_s3.get_bucket_replication(Bucket=names[role])

    assert fraud("s3", "bootstrap") == 0
    second = capsys.readouterr().out
    assert second.count("up to date") == 8, second


def test_bootstrap_repairs_a_replication_rule_pointing_elsewhere(regions, names, capsys):
    assert fraud("s3", "bootstrap") == 0
    regions.primary_s3.put_bucket_replication(Bucket=names["models"], ReplicationConfiguration={
        "Role": ROLE_ARN,
        "Rules": [{"ID": f"replicate-to-{DR_REGION}", "Priority": 1, "Status": "Enabled",
                   "Filter": {"Prefix": ""}, "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": "arn:aws:s3:::somebody-elses-bucket"}}],
    })
    capsys.readouterr()
    assert fraud("s3", "bootstrap") == 0
    assert f"{names['models']}: replicating to" in capsys.readouterr().out
    rule = regions.primary_s3.get_bucket_replication(Bucket=names["models"])["ReplicationConfiguration"]["Rules"][0]
    assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::{names['models_replica']}"


def test_bootstrap_with_a_dr_region_needs_the_replication_role(regions, names, monkeypatch, capsys):
    monkeypatch.delenv("FRAUD_REPLICATION_ROLE_ARN")
    assert fraud("s3", "bootstrap") == 1
    assert "FRAUD_REPLICATION_ROLE_ARN" in capsys.readouterr().err
    # Refused before anything changed, in either region.
    assert not bucket_names(regions.dr_s3) and not bucket_names(regions.primary_s3)


def _primary_with_a_production_model(trained_model) -> str:
    assert fraud("s3", "bootstrap") == 0
    registry = settings.store_urls().registry()
    registry.save(trained_model)
    registry.promote(trained_model.version, reason="recovery drill")
    assert fraud("model", "backup") == 0
    return trained_model.version


def test_recovery_drill_a_fresh_host_serves_from_the_dr_region(regions, names, trained_model, batch_frame,
                                                               tmp_path):
    """The drill of docs/deployment.md (phase 7.2), timed. The test copies the objects into the
    replicas as S3 replication would (moto does not replicate), then loses the primary region
    (its server process is killed). A fresh process runs `fraud s3 failover` with the
    settings of the primary host, whose endpoint is now dead; another fresh process serves
    /predict with the settings it wrote."""
    version = _primary_with_a_production_model(trained_model)
    for role in ("models", "backups"):
        assert replicate(regions.primary_s3, names[role], regions.dr_s3, names[role + "_replica"])
    regions.primary.stop()

    started = time.perf_counter()
    env_file = tmp_path / "failover.env"
    result = subprocess.run([str(FRAUD), "s3", "failover", "--env-file", str(env_file)],
                            capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert result.returncode == 0, result.stderr
    failover_seconds = time.perf_counter() - started
    assert f"production model {version} verified in s3://{names['models_replica']}/models" in result.stdout
    assert "model.ubj" in result.stdout and "taken from" not in result.stdout

    failover_settings = dict(
        line.split("=", 1) for line in env_file.read_text().splitlines() if line and not line.startswith("#")
    )
    assert failover_settings["FRAUD_MODELS_BUCKET"] == names["models_replica"]
    assert failover_settings["FRAUD_S3_ENDPOINT_URL"] == regions.dr.url
    assert failover_settings["AWS_REGION"] == DR_REGION
    rows = batch_frame.head(25).to_dict(orient="records")
    with ServiceProcess(tmp_path, env=failover_settings) as service:
        serving_seconds = time.perf_counter() - started
        response = httpx.post(service.url + "/predict", json=rows, timeout=30)
    answered_seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert {answer["model_version"] for answer in response.json()} == {version}
    print(f"\nrecovery drill: failover {failover_seconds:.1f} s, service ready {serving_seconds:.1f} s, "
          f"first /predict answered {answered_seconds:.1f} s after the primary was lost")


def test_failover_takes_a_model_replication_has_not_delivered_from_the_backups(
        regions, names, trained_model, capsys):
    version = _primary_with_a_production_model(trained_model)
    # Replication keeps no order: the pointer has arrived, the model file not yet.
    lagging = f"models/{version}/model.ubj"
    replicate(regions.primary_s3, names["models"], regions.dr_s3, names["models_replica"], skip=(lagging,))
    replicate(regions.primary_s3, names["backups"], regions.dr_s3, names["backups_replica"])
    capsys.readouterr()
    assert fraud("s3", "failover") == 0
    out = capsys.readouterr().out
    assert f"model files taken from s3://{names['backups_replica']}/backups/{version}" in out
    assert f"FRAUD_MODELS_BUCKET={names['models_replica']}" in out
    original = regions.primary_s3.get_object(Bucket=names["models"], Key=lagging)["Body"].read()
    assert regions.dr_s3.get_object(Bucket=names["models_replica"], Key=lagging)["Body"].read() == original


def test_failover_takes_the_pointer_from_the_backups_when_the_replica_has_none(
        regions, names, trained_model, capsys):
    version = _primary_with_a_production_model(trained_model)
    replicate(regions.primary_s3, names["backups"], regions.dr_s3, names["backups_replica"])
    capsys.readouterr()
    assert fraud("s3", "failover") == 0
    out = capsys.readouterr().out
    assert f"production pointer taken from s3://{names['backups_replica']}/backups/production.json" in out
    pointer = regions.dr_s3.get_object(Bucket=names["models_replica"], Key="models/production.json")
    assert json.loads(pointer["Body"].read())["version"] == version


def test_failover_refuses_a_damaged_model(regions, names, trained_model, capsys):
    version = _primary_with_a_production_model(trained_model)
    replicate(regions.primary_s3, names["models"], regions.dr_s3, names["models_replica"])
    key = f"models/{version}/model.ubj"
    damaged = bytearray(regions.dr_s3.get_object(Bucket=names["models_replica"], Key=key)["Body"].read())
    damaged[len(damaged) // 2] ^= 0xFF
    regions.dr_s3.put_object(Bucket=names["models_replica"], Key=key, Body=bytes(damaged))
    capsys.readouterr()
    assert fraud("s3", "failover", "--env-file", str(Path(settings.local_root()) / "failover.env")) == 1
    error = capsys.readouterr().err
    assert f"production model {version} cannot serve" in error and "SHA-256" in error
    assert not (Path(settings.local_root()) / "failover.env").exists()


def test_the_replication_role_policy_matches_what_bootstrap_configures(monkeypatch):
    from fraud_assets.core.storage.replication import ReplicationTarget, replication_configuration

    for name in ("FRAUD_MODELS_BUCKET", "FRAUD_BACKUP_BUCKET", "FRAUD_MODELS_REPLICA_BUCKET",
                 "FRAUD_BACKUP_REPLICA_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    policy = (Path(__file__).parents[2] / "deployment" / "iam-replication-policy.json").read_text()
    replicas = settings.replica_bucket_names("eu-west-1")  # the region the policy is written for
    for replica in replicas.values():
        assert f'"arn:aws:s3:::{replica}/*"' in policy
    (rule,) = replication_configuration(ReplicationTarget(replicas["models"], "eu-west-1", ROLE_ARN))["Rules"]
    # The policy grants no s3:ReplicateDelete because no delete marker is replicated.
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"} and "ReplicateDelete" not in policy


def test_a_replica_name_past_the_s3_limit_must_be_given(monkeypatch, capsys):
    monkeypatch.setenv("FRAUD_MODELS_BUCKET", "m" * 55)
    monkeypatch.setenv("FRAUD_DR_REGION", "ap-southeast-2")
    monkeypatch.delenv("FRAUD_MODELS_REPLICA_BUCKET", raising=False)
    assert fraud("s3", "failover") == 1
    assert "FRAUD_MODELS_REPLICA_BUCKET" in capsys.readouterr().err
    monkeypatch.setenv("FRAUD_MODELS_REPLICA_BUCKET", "models-sydney")
    assert settings.replica_bucket_names("ap-southeast-2")["models"] == "models-sydney"


def test_kms_encrypted_buckets_replicate_with_a_key_of_the_dr_region(regions, names, monkeypatch, capsys):
    monkeypatch.setenv("FRAUD_KMS_KEY_ID", "arn:aws:kms:us-east-1:123456789012:key/primary")
    assert fraud("s3", "bootstrap") == 1
    assert "FRAUD_DR_KMS_KEY_ID" in capsys.readouterr().err
    dr_key = "arn:aws:kms:eu-west-1:123456789012:key/replica"
    monkeypatch.setenv("FRAUD_DR_KMS_KEY_ID", dr_key)
    assert fraud("s3", "bootstrap") == 0
    rule = regions.dr_s3.get_bucket_encryption(Bucket=names["models_replica"])[
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": dr_key}
    (replication,) = regions.primary_s3.get_bucket_replication(Bucket=names["models"])[
        "ReplicationConfiguration"]["Rules"]
    assert replication["Destination"]["EncryptionConfiguration"] == {"ReplicaKmsKeyID": dr_key}
