"""``fraud demo``: the main job end to end on the embedded default (local disk, SQLite)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from fraud_assets import settings
from fraud_assets.core.data.tables import write_table

DAGSTER_HOME_DIR = ".dagster_home"
TRAINING_DAYS = 2


def _demo_dates(days: int) -> list[str]:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return [(yesterday - timedelta(days=offset)).isoformat() for offset in reversed(range(days))]


def ensure_demo_data(root: Path, *, rows: int, batch_rows: int, days: int, drift: float, seed: int) -> list[str]:
    """Write the labelled dataset and one unlabelled batch per day, unless already there."""
    from fraud_assets.synthetic.generate import generate_transactions  # pandas: not for `fraud --help`

    raw = root / "data" / "raw" / "creditcard.csv"
    if not raw.exists():
        click.echo(f"generating {rows} labelled transactions -> {raw.relative_to(root)}")
        frame = generate_transactions(rows, seed=seed, start_day=0, n_days=TRAINING_DAYS)
        write_table(frame, str(raw))
    dates = _demo_dates(days)
    for index, date in enumerate(dates):
        batch = root / "data" / "incoming" / f"{date}_transactions.csv"
        processed = root / "data" / "processed" / batch.name
        if batch.exists() or processed.exists():
            continue
        last = index == len(dates) - 1
        frame = generate_transactions(
            batch_rows, seed=seed, start_day=TRAINING_DAYS + index, n_days=1, labels=False,
            drift=drift if last else 0.0,
        )
        write_table(frame, str(batch))
        click.echo(f"generated batch {batch.relative_to(root)}")
    return dates


def local_instance(root: Path):
    """The persistent local instance that `dagster dev` (run from ``root``) also reads."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home = root / DAGSTER_HOME_DIR
    home.mkdir(exist_ok=True)
    config_dir = root if (root / "dagster.yaml").exists() else home
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(config_dir)))


def _materialization(result, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {key: value.value for key, value in materialization.metadata.items()}
    return {}


@click.command("demo")
@click.option("--rows", type=click.IntRange(min=10_000), default=284_807, show_default=True,
              help="Labelled rows to train on (the ULB file's size by default).")
@click.option("--batch-rows", type=click.IntRange(min=100), default=50_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1, max=30), default=3, show_default=True)
@click.option("--drift", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Drift applied to the latest day's batch.")
@click.option("--seed", type=int, default=7, show_default=True)
def demo_command(rows, batch_rows, days, drift, seed):
    """Generate demo data if absent, then run the whole graph for the latest demo day."""
    started = time.perf_counter()
    os.environ.setdefault("FRAUD_ENV", "local")
    if os.environ["FRAUD_ENV"] != "local":
        raise click.ClickException("fraud demo runs on the embedded default: unset FRAUD_ENV")
    root = settings.local_root()
    # dagster.yaml keeps its storage paths relative to the project folder.
    os.chdir(root)
    dates = ensure_demo_data(root, rows=rows, batch_rows=batch_rows, days=days, drift=drift, seed=seed)
    day = dates[-1]

    from fraud_assets.definitions import defs

    job = defs.resolve_job_def("fraud_pipeline_job")
    click.echo(f"running fraud_pipeline_job for {day} (Dagster home: {DAGSTER_HOME_DIR}/)")
    with local_instance(root) as instance:
        result = job.execute_in_process(
            instance=instance,
            partition_key=day,
            raise_on_error=False,
            # Step-by-step events stay in the instance (and `dagster dev`); the terminal gets
            # warnings and the summary below.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    model = _materialization(result, "fraud_model")
    production = _materialization(result, "production_model")
    scored = _materialization(result, "daily_predictions")
    drift_stats = _materialization(result, "drift_statistics")
    click.echo("")
    click.echo(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
    if model:
        click.echo(f"model        {model['model_version']}  test AUPRC {model['test_auprc']:.4f}  "
                   f"ROC-AUC {model['test_roc_auc']:.4f}  threshold {model['threshold']:.4f}")
    click.echo(f"production   {production.get('model_version', 'not promoted')}")
    if scored:
        click.echo(f"scored       {scored['rows']} rows for {day}, flagged {scored['flagged']} "
                   f"({scored['flagged_rate']:.4%})")
    if drift_stats:
        click.echo(f"drift        {drift_stats['drift_level']} (detected: {drift_stats['drift_detected']}, "
                   f"share {drift_stats['drift_share']:.2f})")
    click.echo(f"took {time.perf_counter() - started:.1f}s; browse it with: dagster dev")
    if not result.success:
        raise click.ClickException("the pipeline run failed; see `dagster dev` for its logs")
