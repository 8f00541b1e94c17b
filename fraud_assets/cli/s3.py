"""``fraud s3 ...``: set up the buckets and put data where the pipeline reads it."""

from __future__ import annotations

import os
import posixpath

import click

from fraud_assets import settings
from fraud_assets.core.data.tables import (
    TABLE_SUFFIXES,
    has_label,
    iter_transaction_chunks,
    table_format,
)
from fraud_assets.core.storage.locations import Location, s3_storage_options, sse_arguments
from fraud_assets.core.storage.replication import (
    ReplicationSetupError,
    ReplicationTarget,
    ensure_replication,
    replica_plan,
)
from fraud_assets.core.storage.s3_admin import bootstrap_bucket, plan_buckets


def _buckets_and_client():
    return settings.bucket_names(), settings.s3_client()


@click.group("s3")
def s3_group() -> None:
    """S3 buckets of the production environment (FRAUD_*_BUCKET, FRAUD_S3_ENDPOINT_URL)."""


@s3_group.command("bootstrap")
@click.option("--kms-key-id", envvar="FRAUD_KMS_KEY_ID", help="Default-encrypt with this KMS key.")
def bootstrap(kms_key_id: str | None) -> None:
    """Create missing buckets; block public access, encrypt, version models, set lifecycles.

    Idempotent: a second run changes nothing.
    """
    names, client = _buckets_and_client()
    region = client.meta.region_name
    dr_region = settings.dr_region()
    # Settings are checked before any bucket changes, so a mistake leaves nothing half done.
    replication = _replication_plan(region, dr_region, kms_key_id) if dr_region else None
    for plan in plan_buckets(names["data"], names["models"], names["predictions"], names["backups"]):
        changes = bootstrap_bucket(client, plan, region=region, kms_key_id=kms_key_id)
        _report(plan.name, changes)
    if replication:
        replicas, dr_kms_key_id, targets = replication
        dr_client = settings.dr_s3_client(dr_region)
        for role, replica in replicas.items():
            _report(replica, bootstrap_bucket(dr_client, replica_plan(replica), region=dr_region,
                                              kms_key_id=dr_kms_key_id))
            _report(names[role], ensure_replication(client, names[role], targets[role]))


def _report(bucket: str, changes: list[str]) -> None:
    click.echo(f"{bucket}: {', '.join(changes) if changes else 'up to date'}")


def _replication_plan(region: str | None, dr_region: str, kms_key_id: str | None):
    """(replica names, the DR region's KMS key, replication target by role), or an error."""
    role_arn = settings.replication_role_arn()
    dr_kms_key_id = settings.dr_kms_key_id()
    if dr_region == region:
        raise click.ClickException(f"FRAUD_DR_REGION is the primary region ({region}): choose another")
    if not role_arn:
        raise click.ClickException(
            "FRAUD_DR_REGION is set but FRAUD_REPLICATION_ROLE_ARN is not: create the role "
            "from deployment/iam-replication-*.json first (docs/deployment.md, phase 1.3)"
        )
    if kms_key_id and not dr_kms_key_id:
        raise click.ClickException(
            "objects are KMS-encrypted but FRAUD_DR_KMS_KEY_ID is not set: the replicas need "
            f"a key in {dr_region}"
        )
    try:
        replicas = settings.replica_bucket_names(dr_region)
    except ReplicationSetupError as error:
        raise click.ClickException(str(error)) from error
    targets = {
        role: ReplicationTarget(replica, dr_region, role_arn, dr_kms_key_id if kms_key_id else None)
        for role, replica in replicas.items()
    }
    return replicas, dr_kms_key_id, targets


@s3_group.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", help="Object key in the data bucket (default: raw/creditcard.csv for a "
                            "labelled file, incoming/<name> otherwise).")
def upload(path: str, key: str | None) -> None:
    """Validate a transactions file, then upload it to the data bucket (encrypted)."""
    labelled = has_label(os.path.abspath(path))
    # Chunk by chunk: the whole file is validated without being held in memory.
    for _ in iter_transaction_chunks(os.path.abspath(path), require_label=labelled, source=path):
        pass
    key = key or ("raw/creditcard.csv" if labelled else posixpath.join("incoming", os.path.basename(path)))
    if not key.lower().endswith(TABLE_SUFFIXES) or table_format(key) != table_format(path):
        # Every reader picks the parser by the name: Parquet bytes under raw/creditcard.csv
        # were refused by the next training run as "a Parquet file named .csv".
        raise click.UsageError(
            f"{path}: a {table_format(path).capitalize()} file cannot be stored as {key}, which "
            "readers take by its extension; convert the file, or give --key with the same "
            "extension"
        )
    names, client = _buckets_and_client()
    bucket = names["data"]
    client.upload_file(
        path, bucket, key, ExtraArgs=sse_arguments(os.environ.get("FRAUD_KMS_KEY_ID") or None)
    )
    click.echo(f"uploaded {path} to s3://{bucket}/{key}")


@s3_group.command("failover")
@click.option("--env-file", type=click.Path(dir_okay=False),
              help="Write the settings that serve from the DR region here (KEY=value lines: "
                   "a systemd EnvironmentFile, or docker --env-file). Default: print them.")
def failover(env_file: str | None) -> None:
    """Bring the model registry up in FRAUD_DR_REGION from its replicas.

    Run on the recovery host. Checks the replica's production pointer and the model it names
    (every file present, SHA-256 as in the manifest, the model loads); a model replication
    has not fully delivered is taken from the replicated backups. Then writes the settings
    under which `fraud serve` and the pipeline use the replicas as their registry.
    """
    import time

    from fraud_assets.core.model.recovery import RecoveryFailed, recover_production
    from fraud_assets.core.model.registry import ModelRegistry

    started = time.perf_counter()
    dr_region = settings.dr_region()
    if not dr_region:
        raise click.ClickException("FRAUD_DR_REGION is not set: name the region to fail over to")
    try:
        replicas = settings.replica_bucket_names(dr_region)
    except ReplicationSetupError as error:
        raise click.ClickException(str(error)) from error
    options = s3_storage_options(endpoint_url=settings.dr_s3_endpoint_url(), region=dr_region,
                                 kms_key_id=settings.dr_kms_key_id())
    replica = ModelRegistry(Location(f"s3://{replicas['models']}/models", options))
    backup = ModelRegistry(Location(f"s3://{replicas['backups']}/backups", options))
    try:
        recovered = recover_production(replica, backup)
    except RecoveryFailed as error:
        raise click.ClickException(str(error)) from error
    if recovered.pointer_from:
        click.echo(f"production pointer taken from {recovered.pointer_from}")
    if recovered.repaired_from:
        click.echo(f"model files taken from {recovered.repaired_from}")
    click.echo(
        f"production model {recovered.version} verified in {recovered.registry_url} "
        f"({', '.join(recovered.files_checked)}) in {time.perf_counter() - started:.1f} s"
    )
    lines = failover_environment(replicas, dr_region)
    if env_file:
        with open(env_file, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        click.echo(f"settings written to {env_file}")
    else:
        click.echo("\n".join(lines))


def failover_environment(replicas: dict[str, str], dr_region: str) -> list[str]:
    """The settings of a host serving from the DR region. Empty values read as unset, so
    they also clear a primary-region endpoint, key or DR region left in the main file."""
    return [
        f"# Written by `fraud s3 failover`: the model registry serves from {dr_region}.",
        "FRAUD_ENV=production",
        f"AWS_REGION={dr_region}",
        f"AWS_DEFAULT_REGION={dr_region}",
        f"FRAUD_MODELS_BUCKET={replicas['models']}",
        f"FRAUD_BACKUP_BUCKET={replicas['backups']}",
        f"FRAUD_S3_ENDPOINT_URL={settings.dr_s3_endpoint_url() or ''}",
        f"FRAUD_KMS_KEY_ID={settings.dr_kms_key_id() or ''}",
        "FRAUD_DR_REGION=",
        "FRAUD_DR_S3_ENDPOINT_URL=",
        "FRAUD_DR_KMS_KEY_ID=",
    ]
