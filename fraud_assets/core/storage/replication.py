"""Cross-region replication of the models and backups buckets (``fraud s3 bootstrap`` with
``FRAUD_DR_REGION``).

S3 replication copies every new object version of a source bucket to a replica bucket in
another region, under the same key and with the same encryption. Only the models and backups
buckets are replicated: they hold the one state that cannot be rebuilt (trained models and
the production pointer); data and predictions are re-created by the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from fraud_assets.core.storage.s3_admin import MODELS_LIFECYCLE, BucketPlan, _contained

# S3 bucket names are at most 63 characters.
MAX_BUCKET_NAME = 63

# Replication Time Control: S3 replicates 99.99 % of objects within 15 minutes and raises
# an event for any object that takes longer. The figure behind the recovery point objective.
REPLICATION_TIME_MINUTES = 15


class ReplicationSetupError(ValueError):
    pass


def replica_bucket_name(primary: str, region: str) -> str:
    name = f"{primary}-{region}"
    if len(name) > MAX_BUCKET_NAME:
        raise ReplicationSetupError(
            f"replica bucket name {name!r} is longer than {MAX_BUCKET_NAME} characters: "
            "name the replica with FRAUD_MODELS_REPLICA_BUCKET / FRAUD_BACKUP_REPLICA_BUCKET"
        )
    return name


def replica_plan(name: str) -> BucketPlan:
    """A replica is versioned (S3 replication requires it on both sides) and keeps the models
    bucket's lifecycle: replicated pointer rewrites pile up as noncurrent versions there too."""
    return BucketPlan(name, versioned=True, lifecycle=MODELS_LIFECYCLE)


@dataclass(frozen=True)
class ReplicationTarget:
    """Where a source bucket replicates to, and with which identity and key."""

    replica_bucket: str
    region: str
    role_arn: str
    # Set when the objects are SSE-KMS encrypted: S3 skips such objects unless told to
    # replicate them, and re-encrypts them with this key of the replica's region.
    replica_kms_key_id: str | None = None


def replication_configuration(target: ReplicationTarget) -> dict:
    destination: dict = {
        "Bucket": f"arn:aws:s3:::{target.replica_bucket}",
        "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": REPLICATION_TIME_MINUTES}},
        "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": REPLICATION_TIME_MINUTES}},
    }
    rule: dict = {
        "ID": f"replicate-to-{target.region}",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        # A delete in the primary region (a mistake or an intruder) must not hide the
        # replica's copy: the replica is the way back from exactly that.
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": destination,
    }
    if target.replica_kms_key_id:
        rule["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
        destination["EncryptionConfiguration"] = {"ReplicaKmsKeyID": target.replica_kms_key_id}
    return {"Role": target.role_arn, "Rules": [rule]}


def _current_replication(client, bucket: str) -> dict | None:
    try:
        return client.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ReplicationConfigurationNotFoundError":
            return None
        raise


def _replication_matches(current: dict | None, wanted: dict) -> bool:
    if current is None or current.get("Role") != wanted["Role"]:
        return False
    current_rules = {rule.get("ID"): rule for rule in current.get("Rules", [])}
    wanted_rules = {rule["ID"]: rule for rule in wanted["Rules"]}
    return current_rules.keys() == wanted_rules.keys() and all(
        _contained(current_rules[rule_id], rule) for rule_id, rule in wanted_rules.items()
    )


def ensure_replication(client, source_bucket: str, target: ReplicationTarget) -> list[str]:
    """Point ``source_bucket``'s replication at the target; return what was changed.

    The source must already be versioned (bootstrap versions it first)."""
    wanted = replication_configuration(target)
    if _replication_matches(_current_replication(client, source_bucket), wanted):
        return []
    client.put_bucket_replication(Bucket=source_bucket, ReplicationConfiguration=wanted)
    return [f"replicating to {target.replica_bucket} ({target.region})"]
