"""``fraud demo``: the main job end to end on the embedded default (local disk, SQLite)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from fraud_assets import settings
from fraud_assets.core.data.tables import write_table

DAGSTER_HOME_DIR = ".dagster_home"
# A checkout: the package's parent holds the local instance's dagster.yaml.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRAINING_DAYS = 2


def _demo_dates(days: int) -> list[str]:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return [(yesterday - timedelta(days=offset)).isoformat() for offset in reversed(range(days))]


def ensure_demo_data(root: Path, *, rows: int, batch_rows: int, days: int, drift: float, seed: int) -> list[str]:
    """Write the labelled base file, and per day a batch without its truth and the label
    reports to come, unless that day was written before."""
    from fraud_assets.cli.demo_loop import write_day  # pandas: not for `fraud --help`
    from fraud_assets.synthetic.generate import generate_transactions

    raw = root / "data" / "raw" / "creditcard.csv"
    if not raw.exists():
        click.echo(f"generating {rows} labelled transactions -> {raw.relative_to(root)}")
        frame = generate_transactions(rows, seed=seed, start_day=0, n_days=TRAINING_DAYS)
        write_table(frame, str(raw))
    dates = _demo_dates(days)
    for index, date in enumerate(dates):
        name = f"{date}_transactions.csv"
        places = (root / "data" / "demo_world" / "batches", root / "data" / "incoming", root / "data" / "processed" / date)
        if any((folder / name).exists() for folder in places):
            continue
        last = index == len(dates) - 1
        write_day(root, date, TRAINING_DAYS + index, rows=batch_rows, drift=drift if last else 0.0, seed=seed)
        click.echo(f"generated the batch and label reports of {date}")
    return dates


# The demo's loop runs in minutes, so labels mature in days, not a month; a user's own
# setting wins.
DEMO_SETTINGS = {
    "FRAUD_LABEL_MATURITY_DAYS": "2",
    "FRAUD_CHALLENGER_MIN_DAYS": "2",
    "FRAUD_CHALLENGER_MIN_FRAUDS": "30",
    "FRAUD_PROMOTION_RESAMPLES": "200",
    # The search still runs (the manifest and MLflow show its trials) but the demo's small
    # data needs less of it than a production week does.
    "FRAUD_SEARCH_BUDGET_SECONDS": "15",
}


def local_instance(root: Path):
    """The persistent local instance that `dg dev` (run from ``root``) also reads."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home = root / DAGSTER_HOME_DIR
    home.mkdir(exist_ok=True)
    config_dir = root if (root / "dagster.yaml").exists() else home
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(config_dir)))


@click.command("demo")
@click.option("--rows", type=click.IntRange(min=10_000), default=284_807, show_default=True,
              help="Labelled rows to train on (the ULB file's size by default).")
@click.option("--batch-rows", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--days", type=click.IntRange(min=2, max=30), default=8, show_default=True,
              help="Days replayed, ending yesterday.")
@click.option("--drift", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Drift applied to the latest day's batch.")
@click.option("--seed", type=int, default=7, show_default=True)
def demo_command(rows, batch_rows, days, drift, seed):
    """Replay the loop over past days: score, apply late labels, retrain a challenger,
    measure realised performance and decide whether the challenger takes over."""
    started = time.perf_counter()
    os.environ.setdefault("FRAUD_ENV", "local")
    if os.environ["FRAUD_ENV"] != "local":
        raise click.ClickException("fraud demo runs on the embedded default: unset FRAUD_ENV")
    for name, value in DEMO_SETTINGS.items():
        os.environ.setdefault(name, value)
    click.echo("settings: " + ", ".join(f"{name}={os.environ[name]}" for name in DEMO_SETTINGS))
    root = settings.local_root()
    started_in = Path.cwd()
    # A FRAUD_LOCAL_DIR that does not exist yet is where the user wants the demo's files.
    root.mkdir(parents=True, exist_ok=True)
    _copy_instance_files(root)
    # dagster.yaml keeps its storage paths relative to the project folder.
    os.chdir(root)
    dates = ensure_demo_data(root, rows=rows, batch_rows=batch_rows, days=days, drift=drift, seed=seed)

    from fraud_assets.cli.demo_loop import run_loop, summary
    from fraud_assets.definitions import defs

    storage = settings.store_urls()
    click.echo(f"replaying {dates[0]} .. {dates[-1]} (Dagster home: {DAGSTER_HOME_DIR}/)")
    with local_instance(root) as instance:
        from fraud_assets.defs.local_run_launcher import fail_runs_without_worker

        # No daemon watches the demo's runs: those of a demo that was killed would stay
        # STARTED (and show as running in `dagster dev`) without this.
        for run_id in fail_runs_without_worker(instance):
            click.echo(f"run {run_id} of a killed earlier demo marked failed")
        done = run_loop(root, defs, instance, dates, retrain_after=max(0, days // 2 - 1), storage=storage)
    click.echo("")
    click.echo(f"scored {done['scored']} batch file(s), shadow-scored {done['shadow']} day(s), applied "
               f"{done['label_files']} label file(s), trained {done['trained']} model(s)")
    for line in summary(storage, dates, done):
        click.echo(line)
    registry = storage.registry()
    click.echo(f"production   {registry.production_version()}")
    click.echo(f"took {time.perf_counter() - started:.1f}s; browse it with: {_browse_command(root, started_in)}")


def _copy_instance_files(root: Path) -> None:
    # A FRAUD_LOCAL_DIR outside the checkout gets the checkout's instance settings (the run
    # launcher, one run per day), so the demo's runs there behave as they do here and the UI
    # started there reads them.
    # Not into an instance an earlier demo started without it: its storage would move and the
    # demo would no longer see the days it already replayed.
    source = PROJECT_ROOT / "dagster.yaml"
    if source.is_file() and not (root / "dagster.yaml").exists() and not (root / DAGSTER_HOME_DIR).exists():
        shutil.copyfile(source, root / "dagster.yaml")


def _browse_command(root: Path, started_in: Path) -> str:
    if root.resolve() == started_in.resolve() and (root / "pyproject.toml").is_file():
        return 'DAGSTER_HOME="$PWD" .venv/bin/dg dev'
    dagster = Path(sys.executable).with_name("dagster")
    # The home local_instance() opened: the folder when it holds the settings, else the
    # instance folder itself.
    home = '"$PWD"' if (root / "dagster.yaml").exists() else f'"$PWD/{DAGSTER_HOME_DIR}"'
    return (f"cd {shlex.quote(str(root))} && DAGSTER_HOME={home} {shlex.quote(str(dagster))} dev "
            "-m fraud_assets.definitions")
