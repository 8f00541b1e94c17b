"""Creating and hardening the platform's buckets (``fraud s3 bootstrap``).

Run by an operator with bucket-admin rights, never by the host role. Every step first reads
the current state and only changes what differs, so running it again is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import ClientError

PREDICTIONS_LIFECYCLE = [
    {
        "ID": "expire-predictions-after-90-days",
        "Filter": {"Prefix": "predictions/"},
        "Status": "Enabled",
        "Expiration": {"Days": 90},
    },
    {
        "ID": "abort-incomplete-multipart-uploads",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    },
]

# Superseded model files (a version folder is never rewritten, but pointers are) are kept 30
# days and at least the 5 newest, enough to undo a bad pointer write by hand.
MODELS_LIFECYCLE = [
    {
        "ID": "expire-noncurrent-model-versions",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 5},
    },
    PREDICTIONS_LIFECYCLE[1],
]

DEFAULT_LIFECYCLE = [PREDICTIONS_LIFECYCLE[1]]

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@dataclass(frozen=True)
class BucketPlan:
    name: str
    versioned: bool = False
    lifecycle: list = field(default_factory=lambda: list(DEFAULT_LIFECYCLE))


def _encryption_rule(kms_key_id: str | None) -> dict:
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id} if kms_key_id else {"SSEAlgorithm": "AES256"}
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bool(kms_key_id)}]}


def _exists(client, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
        return True
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


def _current(call, key: str, missing_codes: tuple[str, ...]):
    try:
        return call()[key]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in missing_codes:
            return None
        raise


def bootstrap_bucket(client, plan: BucketPlan, *, region: str | None, kms_key_id: str | None) -> list[str]:
    """Bring one bucket to the plan; return what was changed (empty when nothing was)."""
    changes = []
    bucket = plan.name
    if not _exists(client, bucket):
        arguments = {"Bucket": bucket}
        if region and region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(**arguments)
        changes.append("created")

    block = _current(
        lambda: client.get_public_access_block(Bucket=bucket),
        "PublicAccessBlockConfiguration",
        ("NoSuchPublicAccessBlockConfiguration",),
    )
    if block != PUBLIC_ACCESS_BLOCK:
        client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        changes.append("public access blocked")

    wanted_encryption = _encryption_rule(kms_key_id)
    encryption = _current(
        lambda: client.get_bucket_encryption(Bucket=bucket),
        "ServerSideEncryptionConfiguration",
        ("ServerSideEncryptionConfigurationNotFoundError",),
    )
    current_default = (encryption or {}).get("Rules", [{}])[0].get("ApplyServerSideEncryptionByDefault")
    if current_default != wanted_encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]:
        client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=wanted_encryption)
        changes.append("default encryption set")

    if plan.versioned and client.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changes.append("versioning enabled")

    rules = _current(
        lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket),
        "Rules",
        ("NoSuchLifecycleConfiguration",),
    )
    if not _lifecycle_matches(rules or [], plan.lifecycle):
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": plan.lifecycle})
        changes.append("lifecycle rules set")
    return changes


def _contained(current, wanted) -> bool:
    """True when every field the server reports equals the wanted one. Some S3-compatible
    servers drop optional fields they do not support (moto drops NewerNoncurrentVersions);
    re-putting would never converge, so a missing field is not a difference."""
    if isinstance(current, dict) and isinstance(wanted, dict):
        return all(key in wanted and _contained(value, wanted[key]) for key, value in current.items())
    return current == wanted


def _lifecycle_matches(current: list, wanted: list) -> bool:
    current_by_id = {rule.get("ID"): rule for rule in current}
    wanted_by_id = {rule["ID"]: rule for rule in wanted}
    return current_by_id.keys() == wanted_by_id.keys() and all(
        _contained(current_by_id[rule_id], rule) for rule_id, rule in wanted_by_id.items()
    )


def plan_buckets(data: str, models: str, predictions: str, backups: str | None) -> list[BucketPlan]:
    plans = [
        BucketPlan(data),
        BucketPlan(models, versioned=True, lifecycle=MODELS_LIFECYCLE),
        BucketPlan(predictions, lifecycle=PREDICTIONS_LIFECYCLE),
    ]
    if backups:
        plans.append(BucketPlan(backups, versioned=True, lifecycle=MODELS_LIFECYCLE))
    return plans
