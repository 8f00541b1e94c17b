"""IAM trust and role policies for the EC2 host.

Three independent checks: parliament (AWS's documented actions, resource formats and
condition keys), structural rules (no wildcards, no bucket administration, every S3
resource a project bucket or prefix), and an access matrix evaluated against the policy
that spells out which S3 calls the pipeline needs and which it must not be able to make.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import pytest

from .conftest import DEPLOYMENT, run

ROLE = json.loads((DEPLOYMENT / "iam-role-policy.json").read_text())
TRUST = json.loads((DEPLOYMENT / "iam-trust-policy.json").read_text())
# The Dask workers' own role: they read training data and batches, write predictions, no more.
DASK_WORKER = json.loads((DEPLOYMENT / "iam-dask-worker-policy.json").read_text())
POLICIES = pytest.mark.parametrize("policy", [ROLE, DASK_WORKER], ids=["role", "dask-worker"])
PARLIAMENT = Path(__file__).with_name("_parliament_cli.py")
BUCKETS = {
    "data": "card-fraud-prod-data",
    "models": "card-fraud-prod-models",
    "predictions": "card-fraud-prod-predictions",
    "backups": "card-fraud-prod-backups",
}
TEMP_SUFFIX = "*.tmp-*"
ALLOWED_S3_ACTIONS = {
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketLocation",
}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _parliament(policy: dict, *extra: str) -> tuple[int, str]:
    result = run(
        [sys.executable, str(PARLIAMENT), "--json", "--minimum_severity", "INFO", *extra],
        input=json.dumps(policy),
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout.strip()


@POLICIES
@pytest.mark.parametrize(
    "extra", [(), ("--include-community-auditors",)], ids=["core", "community"]
)
def test_parliament_finds_nothing_in_the_role_policy(policy: dict, extra: tuple[str, ...]) -> None:
    code, findings = _parliament(policy, *extra)
    assert (code, findings) == (0, "")


def test_parliament_would_report_a_broken_policy() -> None:
    # Guards the check above: a silent parliament must mean a clean policy, not a linter
    # that never ran.
    broken = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b"}],
    }
    code, findings = _parliament(broken)
    assert code == 1 and "RESOURCE_MISMATCH" in findings


def test_trust_policy_lets_only_ec2_assume_the_role() -> None:
    (statement,) = TRUST["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


@POLICIES
def test_role_policy_has_no_wildcard_or_admin_action(policy: dict) -> None:
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in _as_list(statement["Action"]):
            service = action.partition(":")[0]
            assert "*" not in action and "?" not in action, action
            if service == "s3":
                assert action in ALLOWED_S3_ACTIONS, action
    text = json.dumps(policy)
    assert "AmazonS3FullAccess" not in text and '"s3:*"' not in text


@POLICIES
def test_every_s3_resource_is_a_project_bucket_or_prefix(policy: dict) -> None:
    bucket_arns = {f"arn:aws:s3:::{b}" for b in BUCKETS.values()}
    for statement in policy["Statement"]:
        actions = _as_list(statement["Action"])
        if not any(a.startswith("s3:") for a in actions):
            continue
        for resource in _as_list(statement["Resource"]):
            if resource in bucket_arns:
                continue
            bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
            assert f"arn:aws:s3:::{bucket}" in bucket_arns, resource
            # A prefix or a single key; never the whole bucket ("bucket/*").
            assert key and not key.startswith("*"), resource
            if key.endswith(TEMP_SUFFIX):
                # The one other shape: temporary objects under a prefix, delete only.
                assert actions == ["s3:DeleteObject"], statement["Sid"]
                prefix = key.removesuffix(TEMP_SUFFIX)
                assert prefix.endswith("/") and "*" not in prefix, resource
            else:
                assert "*" not in key[:-1], resource
        if {"s3:ListBucket", "s3:ListBucketVersions"} & set(actions):
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            assert prefixes and all(p.endswith("/*") and len(p) > 2 for p in prefixes)


def test_dask_workers_only_read_data_and_write_scores_and_table_parts() -> None:
    """Moves to processed/ and quarantine/, the registry and backups stay with the Dagster host;
    in the data bucket the workers write only the parts of the graph's training tables, which
    the Dagster host publishes (and removes once superseded)."""
    parts = f"arn:aws:s3:::{BUCKETS['data']}/assets/parts/"
    for statement in DASK_WORKER["Statement"]:
        actions = set(_as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"]):
            assert BUCKETS["models"] not in resource and BUCKETS["backups"] not in resource, resource
            if resource == parts + "*":
                assert actions == {"s3:PutObject", "s3:AbortMultipartUpload"}, statement["Sid"]
            elif resource.startswith(parts) and "s3:DeleteObject" in actions:
                assert resource == parts + TEMP_SUFFIX, resource
            elif resource.startswith(f"arn:aws:s3:::{BUCKETS['data']}/"):
                assert actions == {"s3:GetObject"}, (statement["Sid"], resource)
            if "s3:DeleteObject" in actions:
                assert resource.endswith(TEMP_SUFFIX), resource
    assert not any(s.get("Sid", "").startswith(("ShipLogs", "PublishHost")) for s in DASK_WORKER["Statement"])


def test_temporary_object_naming_matches_the_pipeline_code() -> None:
    # Writes go to ".<name>.tmp-<hex>" beside the target and are then moved (copy + delete).
    # Where the policy lets the host delete only such objects, that naming is what it
    # relies on; read the source as text (the package itself is not imported here).
    storage = DEPLOYMENT.parent / "fraud_assets" / "core" / "storage" / "locations.py"
    assert ".tmp-{" in storage.read_text(), "temporary-object naming changed: update the policy"


def test_logs_and_metrics_are_confined_to_the_project() -> None:
    for statement in ROLE["Statement"]:
        actions = _as_list(statement["Action"])
        if any(a.startswith("logs:") for a in actions):
            assert not {
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteLogGroup",
            } & set(actions)
            groups = {
                r.split(":log-group:")[1].split(":")[0] for r in _as_list(statement["Resource"])
            }
            assert groups == {"/card-fraud/dagster", "/card-fraud/system"}
        if "cloudwatch:PutMetricData" in actions:
            assert actions == ["cloudwatch:PutMetricData"]
            namespace = statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
            config = json.loads((DEPLOYMENT / "cloudwatch-config.json").read_text())
            assert namespace == config["metrics"]["namespace"]
        assert all(a.split(":")[0] in {"s3", "logs", "cloudwatch"} for a in actions), actions


# ---------------------------------------------------------------------------------------
# Access matrix. A small evaluator for this policy's grammar (Allow statements, * in Action
# and Resource, StringLike/StringEquals conditions); IAM's default deny covers the rest.


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _allowed(action: str, resource: str, context: dict[str, str] | None = None, policy: dict = ROLE) -> bool:
    context = context or {}
    for statement in policy["Statement"]:
        if not any(_matches(a, action) for a in _as_list(statement["Action"])):
            continue
        if not any(_matches(r, resource) for r in _as_list(statement["Resource"])):
            continue
        ok = True
        for operator, conditions in statement.get("Condition", {}).items():
            for key, values in conditions.items():
                actual = context.get(key)
                if actual is None:
                    ok = False
                elif operator == "StringLike":
                    ok &= any(_matches(v, actual) for v in _as_list(values))
                elif operator == "StringEquals":
                    ok &= actual in _as_list(values)
                else:
                    pytest.fail(f"evaluator does not know {operator}")
        if ok:
            return True
    return False


def _obj(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{BUCKETS[bucket]}/{key}"


def _bucket(bucket: str) -> str:
    return f"arn:aws:s3:::{BUCKETS[bucket]}"


# The keys the pipeline really uses (fraud_assets/defs/resources.py storage_for): the data
# bucket's root holds raw/ incoming/ processed/ quarantine/ and the data-side IO manager's
# assets/, plus Dagster's compute logs; the registry root is models/ in the models bucket,
# with one folder per version, the latest.json and production.json pointers
# (fraud_assets/core/model/registry.py) and the model-side IO manager's assets/ beneath it;
# predictions/date=<day>/ in the predictions bucket; backups/ (same layout as the registry)
# in the backup bucket.
VERSION = "xgb-20250105T030000Z-0123abcd"
TMP = "tmp-0123456789ab"

NEEDED = [
    ("s3:GetObject", _obj("data", "raw/creditcard.csv")),
    # Sensor and daily_predictions: read the day's batch, move it to processed/ (copy +
    # delete) or quarantine/ with a reason object beside it.
    ("s3:GetObject", _obj("data", "incoming/2025-01-01_a.csv")),
    ("s3:DeleteObject", _obj("data", "incoming/2025-01-01_a.csv")),
    ("s3:PutObject", _obj("data", "processed/2025-01-01/2025-01-01_a.csv")),
    ("s3:GetObject", _obj("data", "processed/2025-01-01/2025-01-01_a.csv")),
    ("s3:PutObject", _obj("data", "quarantine/2025-01-01_bad.csv")),
    ("s3:PutObject", _obj("data", "quarantine/2025-01-01_bad.csv.reason.json")),
    # The label sensor and transaction_labels: read a label file, move it to labels/processed/
    # (copy + delete) or to quarantine/.
    ("s3:GetObject", _obj("data", "labels/2025-01-03_chargebacks.csv")),
    ("s3:DeleteObject", _obj("data", "labels/2025-01-03_chargebacks.csv")),
    ("s3:PutObject", _obj("data", "labels/processed/2025-01-03_chargebacks.csv")),
    ("s3:GetObject", _obj("data", "labels/processed/2025-01-03_chargebacks.csv")),
    # The data-side IO manager (tables as Parquet under assets/), and Dagster's compute logs.
    ("s3:PutObject", _obj("data", f"assets/.train_split.parquet.{TMP}")),
    ("s3:DeleteObject", _obj("data", f"assets/.train_split.parquet.{TMP}")),
    ("s3:PutObject", _obj("data", "assets/train_split.parquet")),
    ("s3:GetObject", _obj("data", "assets/train_split.parquet")),
    ("s3:PutObject", _obj("data", "dagster/compute-logs/storage/run/step.out")),
    ("s3:GetObject", _obj("data", "dagster/compute-logs/storage/run/step.err")),
    # The model registry: version folders, pointers (older pointer versions for rollback)
    # and the model-side IO manager's fitted preprocessing parameters.
    ("s3:PutObject", _obj("models", f"models/{VERSION}/model.ubj")),
    ("s3:GetObject", _obj("models", f"models/{VERSION}/model.ubj")),
    ("s3:PutObject", _obj("models", f"models/{VERSION}/manifest.json")),
    ("s3:GetObject", _obj("models", f"models/{VERSION}/preprocessing.json")),
    ("s3:PutObject", _obj("models", "models/latest.json")),
    # The MLflow tracking server's proxied artifacts (--artifacts-destination s3://.../mlflow).
    ("s3:PutObject", _obj("models", "mlflow/1/run/artifacts/bundle/model.ubj")),
    ("s3:GetObject", _obj("models", "mlflow/1/run/artifacts/bundle/model.ubj")),
    ("s3:GetObject", _obj("models", "models/latest.json")),
    ("s3:PutObject", _obj("models", "models/production.json")),
    ("s3:GetObject", _obj("models", "models/production.json")),
    ("s3:GetObjectVersion", _obj("models", "models/production.json")),
    ("s3:PutObject", _obj("models", "models/assets/preprocessing_pipeline.json")),
    ("s3:GetObject", _obj("models", "models/assets/preprocessing_pipeline.json")),
    # Predictions and the per-file scoring summary, read back by drift_statistics.
    ("s3:PutObject", _obj("predictions", "predictions/date=2025-01-01/2025-01-01_a.parquet")),
    ("s3:GetObject", _obj("predictions", "predictions/date=2025-01-01/2025-01-01_a.parquet")),
    ("s3:PutObject", _obj("predictions", "predictions/date=2025-01-01/2025-01-01_a.stats.json")),
    ("s3:GetObject", _obj("predictions", "predictions/date=2025-01-01/2025-01-01_a.stats.json")),
    # The challenger's shadow scores, beside the predictions.
    ("s3:PutObject", _obj("predictions", "challenger_predictions/date=2025-01-01/2025-01-01_a.parquet")),
    ("s3:GetObject", _obj("predictions", "challenger_predictions/date=2025-01-01/2025-01-01_a.stats.json")),
    ("s3:PutObject", _obj("models", "models/challenger.json")),
    ("s3:GetObject", _obj("models", "models/challenger.json")),
    # `fraud model backup` / `restore`: the registry layout under backups/.
    ("s3:PutObject", _obj("backups", f"backups/{VERSION}/model.ubj")),
    ("s3:GetObject", _obj("backups", f"backups/{VERSION}/model.ubj")),
    ("s3:PutObject", _obj("backups", "backups/production.json")),
    ("s3:GetObject", _obj("backups", "backups/latest.json")),
    # Atomic writes: ".<name>.tmp-<hex>" beside the target, moved into place, then deleted.
    ("s3:DeleteObject", _obj("data", f"quarantine/.2025-01-01_bad.csv.reason.json.{TMP}")),
    ("s3:DeleteObject", _obj("models", f"models/.production.json.{TMP}")),
    ("s3:DeleteObject", _obj("models", f"models/.latest.json.{TMP}")),
    ("s3:DeleteObject", _obj("models", f"models/{VERSION}/.model.ubj.{TMP}")),
    ("s3:DeleteObject", _obj("models", f"models/assets/.preprocessing_pipeline.json.{TMP}")),
    ("s3:DeleteObject", _obj("predictions", f"predictions/date=2025-01-01/.2025-01-01_a.parquet.{TMP}")),
    ("s3:DeleteObject", _obj("backups", f"backups/.latest.json.{TMP}")),
    ("s3:DeleteObject", _obj("backups", f"backups/{VERSION}/.model.ubj.{TMP}")),
]

NEEDED_LISTS = [
    ("s3:ListBucket", "data", "incoming/"),
    ("s3:ListBucket", "data", "processed/2025-01-01/"),
    ("s3:ListBucket", "data", "assets/"),
    ("s3:ListBucket", "data", "dagster/compute-logs/storage/"),
    ("s3:ListBucket", "models", "models/"),
    ("s3:ListBucketVersions", "models", "models/production.json"),
    ("s3:ListBucketVersions", "models", "models/"),
    ("s3:ListBucket", "predictions", "predictions/date=2025-01-01/"),
    ("s3:ListBucket", "predictions", "challenger_predictions/date=2025-01-01/"),
    ("s3:ListBucket", "data", "labels/"),
    ("s3:ListBucket", "data", "labels/processed/"),
    ("s3:ListBucket", "backups", "backups/"),
    # The MLflow tracking server lists a run's artifacts under mlflow/.
    ("s3:ListBucket", "models", "mlflow/1/"),
]

FORBIDDEN = [
    # Training data is read-only; nothing outside the listed prefixes.
    ("s3:PutObject", _obj("data", "raw/creditcard.csv")),
    ("s3:DeleteObject", _obj("data", "raw/creditcard.csv")),
    ("s3:GetObject", _obj("data", "raw/other.csv")),
    ("s3:PutObject", _obj("data", "elsewhere/file")),
    ("s3:DeleteObject", _obj("data", "processed/2025-01-01/2025-01-01_a.csv")),
    ("s3:DeleteObject", _obj("data", "quarantine/2025-01-01_bad.csv")),
    # Model history is append-only from the host; versions and pointers cannot be deleted.
    ("s3:DeleteObject", _obj("models", f"models/{VERSION}/model.ubj")),
    ("s3:DeleteObject", _obj("models", "models/production.json")),
    ("s3:DeleteObject", _obj("models", "models/latest.json")),
    ("s3:DeleteObjectVersion", _obj("models", "models/production.json")),
    ("s3:DeleteObject", _obj("models", "models/assets/preprocessing_pipeline.json")),
    # The tracking server keeps run artifacts as the registry keeps versions: no deletes.
    ("s3:DeleteObject", _obj("models", "mlflow/1/run/artifacts/bundle/model.ubj")),
    # Prefixes no code uses: no registry/ or assets/ at the models bucket's root, no drift/
    # in the predictions bucket (drift results are Dagster metadata and metrics).
    ("s3:PutObject", _obj("models", "registry/current.json")),
    ("s3:GetObject", _obj("models", "registry/current.json")),
    ("s3:PutObject", _obj("models", "assets/preprocessing_pipeline.json")),
    ("s3:DeleteObject", _obj("models", f"registry/.current.json.{TMP}")),
    ("s3:PutObject", _obj("predictions", "drift/2025-01-01.json")),
    ("s3:GetObject", _obj("predictions", "drift/2025-01-01.json")),
    ("s3:PutObject", _obj("predictions", "2025-01-01.parquet")),
    # Backups cannot be deleted by the host they protect against.
    ("s3:DeleteObject", _obj("backups", f"backups/{VERSION}/model.ubj")),
    ("s3:DeleteObject", _obj("backups", "backups/latest.json")),
    ("s3:PutObject", _obj("backups", "elsewhere/x")),
    # Bucket administration belongs to the operator running `fraud s3 bootstrap`.
    ("s3:CreateBucket", _bucket("data")),
    ("s3:DeleteBucket", _bucket("models")),
    ("s3:PutBucketPolicy", _bucket("data")),
    ("s3:PutBucketVersioning", _bucket("models")),
    ("s3:PutLifecycleConfiguration", _bucket("predictions")),
    ("s3:PutEncryptionConfiguration", _bucket("data")),
    ("s3:PutBucketPublicAccessBlock", _bucket("backups")),
    ("s3:ListAllMyBuckets", "*"),
    # Other buckets.
    ("s3:GetObject", "arn:aws:s3:::some-other-bucket/raw/creditcard.csv"),
]

FORBIDDEN_LISTS = [
    ("s3:ListBucket", "data", ""),
    ("s3:ListBucket", "data", "secret/"),
    ("s3:ListBucket", "models", ""),
    ("s3:ListBucket", "models", "registry/"),
    ("s3:ListBucket", "models", "assets/"),
    ("s3:ListBucketVersions", "data", "assets/"),
    ("s3:ListBucket", "predictions", "drift/"),
    ("s3:ListBucket", "backups", ""),
]


@pytest.mark.parametrize(("action", "resource"), NEEDED, ids=lambda v: str(v)[-48:])
def test_pipeline_call_is_allowed(action: str, resource: str) -> None:
    assert _allowed(action, resource)


@pytest.mark.parametrize(("action", "bucket", "prefix"), NEEDED_LISTS)
def test_pipeline_listing_is_allowed(action: str, bucket: str, prefix: str) -> None:
    assert _allowed(action, _bucket(bucket), {"s3:prefix": prefix})


@pytest.mark.parametrize(("action", "resource"), FORBIDDEN, ids=lambda v: str(v)[-48:])
def test_call_outside_the_pipeline_is_denied(action: str, resource: str) -> None:
    assert not _allowed(action, resource)


@pytest.mark.parametrize(("action", "bucket", "prefix"), FORBIDDEN_LISTS)
def test_listing_outside_the_pipeline_is_denied(action: str, bucket: str, prefix: str) -> None:
    context = {"s3:prefix": prefix} if prefix else {}
    assert not _allowed(action, _bucket(bucket), context)


def test_bucket_probe_used_by_s3fs_is_allowed() -> None:
    # s3fs checks that a bucket exists with HeadBucket, then GetBucketLocation, and its
    # mkdir (used by UPath-based IO managers) tries CreateBucket when both fail. HeadBucket
    # needs an unconditioned ListBucket, which this policy does not give, so
    # GetBucketLocation has to succeed.
    for bucket in BUCKETS:
        assert _allowed("s3:GetBucketLocation", _bucket(bucket))


# What a Dask worker really does (fraud_assets/core/cluster/): reads the training data, the
# graph's tables and the day's batch files; writes table parts, production's predictions and
# the challenger's shadow scores, each through a temporary beside its target.
WORKER_NEEDED = [
    ("s3:GetObject", _obj("data", "raw/creditcard.csv")),
    ("s3:GetObject", _obj("data", "assets/parts/train_split/0a1b/part-0.parquet")),
    ("s3:GetObject", _obj("data", "incoming/2025-01-01_a.csv")),
    ("s3:GetObject", _obj("data", "processed/2025-01-01/2025-01-01_a.csv")),
    ("s3:PutObject", _obj("data", "assets/parts/train_split/0a1b/part-0.parquet")),
    ("s3:DeleteObject", _obj("data", f"assets/parts/train_split/0a1b/.part-0.parquet.{TMP}")),
    *(
        call
        for folder in ("predictions", "challenger_predictions")
        for call in [
            ("s3:PutObject", _obj("predictions", f"{folder}/date=2025-01-01/2025-01-01_a.parquet")),
            ("s3:PutObject", _obj("predictions", f"{folder}/date=2025-01-01/.2025-01-01_a.parquet.{TMP}")),
            ("s3:GetObject", _obj("predictions", f"{folder}/date=2025-01-01/.2025-01-01_a.parquet.{TMP}")),
            ("s3:DeleteObject", _obj("predictions", f"{folder}/date=2025-01-01/.2025-01-01_a.parquet.{TMP}")),
        ]
    ),
]

WORKER_FORBIDDEN = [
    # Moves, quarantine, labels, the registry and backups belong to the Dagster host.
    ("s3:DeleteObject", _obj("data", "incoming/2025-01-01_a.csv")),
    ("s3:PutObject", _obj("data", "processed/2025-01-01/2025-01-01_a.csv")),
    ("s3:PutObject", _obj("data", "quarantine/2025-01-01_bad.csv")),
    ("s3:PutObject", _obj("data", "raw/creditcard.csv")),
    ("s3:GetObject", _obj("data", "labels/2025-01-01.csv")),
    ("s3:PutObject", _obj("data", "assets/parts.json")),
    ("s3:DeleteObject", _obj("data", "assets/parts/train_split/0a1b/part-0.parquet")),
    ("s3:DeleteObject", _obj("predictions", "predictions/date=2025-01-01/2025-01-01_a.parquet")),
    ("s3:DeleteObject", _obj("predictions", "challenger_predictions/date=2025-01-01/2025-01-01_a.parquet")),
    ("s3:GetObject", _obj("models", "models/production.json")),
    ("s3:PutObject", _obj("backups", f"backups/{VERSION}/model.ubj")),
]


@pytest.mark.parametrize(("action", "resource"), WORKER_NEEDED, ids=lambda v: str(v)[-56:])
def test_dask_worker_call_is_allowed(action: str, resource: str) -> None:
    assert _allowed(action, resource, policy=DASK_WORKER)


@pytest.mark.parametrize(("action", "resource"), WORKER_FORBIDDEN, ids=lambda v: str(v)[-56:])
def test_dask_worker_call_outside_its_share_is_denied(action: str, resource: str) -> None:
    assert not _allowed(action, resource, policy=DASK_WORKER)


@pytest.mark.parametrize("folder", ["predictions/date=2025-01-01/", "challenger_predictions/date=2025-01-01/"])
def test_dask_worker_lists_the_score_folders_it_writes(folder: str) -> None:
    assert _allowed("s3:ListBucket", _bucket("predictions"), {"s3:prefix": folder}, policy=DASK_WORKER)
