"""`fraud s3 bootstrap` and the model registry commands against the local S3 server."""

import json

import pytest

from fraud_assets.cli.main import main
from fraud_assets.core.storage.s3_admin import MODELS_LIFECYCLE, PREDICTIONS_LIFECYCLE, PUBLIC_ACCESS_BLOCK

from ..graph.conftest import run_pipeline


def fraud(*argv) -> int:
    """Run the CLI in process; its exit code."""
    try:
        main(list(argv))
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def test_bootstrap_creates_and_hardens_buckets_idempotently(s3, buckets, capsys):
    assert fraud("s3", "bootstrap") == 0
    first = capsys.readouterr().out
    assert first.count("created") == 4
    assert fraud("s3", "bootstrap") == 0
    second = capsys.readouterr().out
    assert second.count("up to date") == 4, second

    for role, name in buckets.items():
        assert s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"] == PUBLIC_ACCESS_BLOCK
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        versioned = s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled"
        assert versioned is (role in ("models", "backups")), role
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=buckets["predictions"])["Rules"]
    assert {r["ID"] for r in lifecycle} == {r["ID"] for r in PREDICTIONS_LIFECYCLE}
    expiry = next(r for r in lifecycle if r["ID"] == "expire-predictions-after-90-days")
    assert expiry["Expiration"]["Days"] == 90 and expiry["Filter"]["Prefix"] == "predictions/"
    models = s3.get_bucket_lifecycle_configuration(Bucket=buckets["models"])["Rules"]
    assert {r["ID"] for r in models} == {r["ID"] for r in MODELS_LIFECYCLE}


def test_bootstrap_repairs_drifted_settings(s3, buckets, capsys):
    assert fraud("s3", "bootstrap") == 0
    s3.delete_public_access_block(Bucket=buckets["data"])
    capsys.readouterr()
    assert fraud("s3", "bootstrap") == 0
    out = capsys.readouterr().out
    assert f"{buckets['data']}: public access blocked" in out
    # Repaired for real, not only reported.
    assert s3.get_public_access_block(Bucket=buckets["data"])["PublicAccessBlockConfiguration"] == PUBLIC_ACCESS_BLOCK


def test_deployment_lifecycle_file_matches_bootstrap():
    from pathlib import Path

    document = json.loads((Path(__file__).parents[2] / "deployment" / "s3-lifecycle.json").read_text())
    by_id = {rule["ID"]: rule for rule in document["Rules"]}
    for rule in PREDICTIONS_LIFECYCLE:
        assert by_id[rule["ID"]] == rule


@pytest.fixture
def two_models(s3, s3_project, instance, monkeypatch):
    # The second training passes the gate whatever its AUPRC: it becomes the challenger.
    monkeypatch.setenv("FRAUD_MAX_AUPRC_REGRESSION", "1.0")
    assert run_pipeline(instance, job="training_job").success
    assert run_pipeline(
        instance, job="training_job",
        run_config={"ops": {"fraud_model": {"config": {"n_estimators": 90, "seed": 1, "early_stopping_rounds": 20}}}},
    ).success
    return s3_project


def production(s3, bucket) -> str:
    return json.loads(s3.get_object(Bucket=bucket, Key="models/production.json")["Body"].read())["version"]


def test_promote_and_roll_back_on_s3(s3, two_models, capsys):
    models_bucket = two_models["models"]
    capsys.readouterr()
    assert fraud("model", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 2
    first, second = (row["version"] for row in listed)
    # The first model serves; the second, trained while it served, is the challenger.
    assert [row["version"] for row in listed if row["production"]] == [first] == [production(s3, models_bucket)]
    assert [row["version"] for row in listed if row["challenger"]] == [second]

    # The command line overrides the challenge, then rolls back.
    assert fraud("model", "promote", second, "--reason", "manual override") == 0
    assert production(s3, models_bucket) == second
    challenger = json.loads(s3.get_object(Bucket=models_bucket, Key="models/challenger.json")["Body"].read())
    assert challenger["version"] is None and challenger["history"][-1]["outcome"] == "promoted"
    assert fraud("model", "promote", first, "--reason", "rollback test") == 0
    assert production(s3, models_bucket) == first
    assert fraud("model", "promote", "xgb-does-not-exist") == 1
    assert production(s3, models_bucket) == first
    # The pointer is a versioned object: every promotion is kept in the bucket's history --
    # the first training, the override and the rollback; the refused promotion wrote nothing.
    history = s3.list_object_versions(Bucket=models_bucket, Prefix="models/production.json")["Versions"]
    assert len(history) == 3
    record = json.loads(s3.get_object(Bucket=models_bucket, Key="models/production.json")["Body"].read())
    assert record["history"][-1]["version"] == second


def test_backup_and_restore_on_s3(s3, two_models, capsys):
    models_bucket, backups = two_models["models"], two_models["backups"]
    current = production(s3, models_bucket)
    assert fraud("model", "backup") == 0
    backed_up = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=backups)
                 for item in page.get("Contents", [])}
    assert f"backups/{current}/model.ubj" in backed_up and "backups/production.json" in backed_up
    model_key = f"models/{current}/model.ubj"
    model_bytes = s3.get_object(Bucket=models_bucket, Key=model_key)["Body"].read()
    assert s3.get_object(Bucket=backups, Key=f"backups/{current}/model.ubj")["Body"].read() == model_bytes

    # Lose the registry, then restore it from the backup.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=models_bucket, Prefix="models/"):
        for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=models_bucket, Key=version["Key"], VersionId=version["VersionId"])
    assert fraud("model", "restore") == 0
    assert production(s3, models_bucket) == current
    # The restored model is byte for byte the one that was lost.
    assert s3.get_object(Bucket=models_bucket, Key=model_key)["Body"].read() == model_bytes
    capsys.readouterr()
    assert fraud("model", "list", "--json") == 0
    assert current in {row["version"] for row in json.loads(capsys.readouterr().out)}
