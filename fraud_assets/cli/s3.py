"""``fraud s3 ...``: set up the buckets and put data where the pipeline reads it."""

from __future__ import annotations

import os
import posixpath

import click

from fraud_assets import settings
from fraud_assets.core.data.tables import has_label, iter_transaction_chunks
from fraud_assets.core.storage.locations import sse_arguments
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
    for plan in plan_buckets(names["data"], names["models"], names["predictions"], names["backups"]):
        changes = bootstrap_bucket(client, plan, region=region, kms_key_id=kms_key_id)
        click.echo(f"{plan.name}: {', '.join(changes) if changes else 'up to date'}")


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
    names, client = _buckets_and_client()
    bucket = names["data"]
    client.upload_file(
        path, bucket, key, ExtraArgs=sse_arguments(os.environ.get("FRAUD_KMS_KEY_ID") or None)
    )
    click.echo(f"uploaded {path} to s3://{bucket}/{key}")
