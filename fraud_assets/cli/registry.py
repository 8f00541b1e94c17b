"""``fraud model ...``: list, promote (and so roll back), back up and restore models.

Works on the registry of the configured environment: the local ``models/`` folder, or the
models bucket when ``FRAUD_ENV=production``.
"""

from __future__ import annotations

import json

import click

from fraud_assets import settings
from fraud_assets.core.model.registry import ModelRegistry, UnknownModelVersion


def _storage():
    return settings.store_urls()


@click.group("model")
def model_group() -> None:
    """Model registry: list, add, promote or roll back, back up and restore."""


@model_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_models(as_json: bool) -> None:
    """List model versions, oldest first; * marks production, ~ the challenger in shadow."""
    registry = _storage().registry()
    rows = registry.describe_versions()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no models in {registry.location.url_of()}")
    for row in rows:
        auprc = f"{row['test_auprc']:.4f}" if row["test_auprc"] is not None else "-"
        mark = "*" if row["production"] else "~" if row.get("challenger") else " "
        click.echo(f"{mark} {row['version']}  test_auprc={auprc}  created={row['created_at']}")


@model_group.command("add")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
def add(model_dir: str) -> None:
    """Put a model folder from `fraud train` into the registry under its own version; then
    `fraud model promote VERSION` serves it."""
    from fraud_assets.cli.paths import load_model_dir

    try:
        model = load_model_dir(model_dir)
    except click.BadParameter as error:
        error.param_hint = "MODEL_DIR"
        raise
    registry = _storage().registry()
    if model.version in registry.version_ids():
        click.echo(f"{model.version} is already in {registry.location.url_of()}: nothing added")
        return
    try:
        registry.save(model)
    except ValueError as error:
        raise click.BadParameter(f"{model_dir}: {error}", param_hint="MODEL_DIR") from error
    click.echo(f"added {model.version} to {registry.location.url_of()}; serve it with "
               f"`fraud model promote {model.version}`")


@model_group.command("promote")
@click.argument("version")
@click.option("--reason", default="manual promotion", show_default=True)
def promote(version: str, reason: str) -> None:
    """Make VERSION the production model (also how to roll back)."""
    registry = _storage().registry()
    previous = registry.production_version()
    try:
        registry.promote(version, reason=reason)
    except UnknownModelVersion as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"production: {previous or 'none'} -> {version}")


@model_group.command("sync-aliases")
def sync_aliases() -> None:
    """Point MLflow's champion and challenger aliases at the registry's production and
    challenger models (after a change made while tracking was unreachable)."""
    tracker = settings.tracker()
    if tracker is None:
        raise click.ClickException("MLflow tracking is off (FRAUD_TRACKING=off)")
    aliases = tracker.sync_aliases(_storage().registry())
    if not aliases:
        click.echo(f"no tracked model in {tracker.uri}: no aliases to set")
    for alias, number in aliases.items():
        click.echo(f"{alias}: {f'version {number}' if number else 'removed'}")


@model_group.command("backup")
def backup() -> None:
    """Copy every model version and the pointers to the backup location."""
    storage = _storage()
    target = ModelRegistry(storage.backup())
    copied = storage.registry().copy_to(target)
    click.echo(f"backed up {len(copied)} new version(s) to {target.location.url_of()}")


@model_group.command("restore")
@click.option("--version", "versions", multiple=True, help="Only these versions (default: all, and pointers).")
def restore(versions: tuple[str, ...]) -> None:
    """Copy models (and, for a full restore, the pointers) back from the backup location."""
    storage = _storage()
    source, target = ModelRegistry(storage.backup()), storage.registry()
    before = {"production": target.production_version(), "challenger": target.challenger_version()}
    try:
        copied = source.copy_to(target, list(versions) or None)
    except UnknownModelVersion as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"restored {len(copied)} version(s) from {source.location.url_of()}")
    # A full restore brings the backup's pointers back: say what now serves.
    after = {"production": target.production_version(), "challenger": target.challenger_version()}
    for role, version in after.items():
        if version != before[role]:
            click.echo(f"{role}: {before[role] or 'none'} -> {version or 'none'}")
