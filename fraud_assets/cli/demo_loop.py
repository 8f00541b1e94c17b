"""The loop in time for ``fraud demo``: past days replayed one by one in the local instance.

Each day's batch is scored (and shadow-scored while a challenger runs), then the label files
reported that day are applied as the label sensor would; a retraining on the labelled days
makes a challenger; realised performance and the challenger's evaluation close the loop.
The demo data's truth is known to the generator only: batch files carry no ``Class``; frauds
are reported later, in label files that wait in ``data/demo_world/`` until their report day
has passed, as a card issuer's reports would.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click
import numpy as np

from fraud_assets.core.data.labels import TRANSACTION_DATE, TRANSACTION_ID, read_label_file, report_date
from fraud_assets.core.data.schema import LABEL
from fraud_assets.core.data.tables import write_table

WORLD = ("data", "demo_world", "labels")  # reports not made yet: outside anything the platform reads
# Batches that have not "arrived" yet: a day's batch lands in incoming/ on its day, so a
# training before it never counts its (unlabelled) rows as genuine.
WORLD_BATCHES = ("data", "demo_world", "batches")
MAX_REPORT_DELAY_DAYS = 2  # within the demo's label maturity, so mature days are complete
GENUINE_CONFIRMATIONS_PER_DAY = 5
RETRAIN_TAG = "fraud/demo_retrain_day"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def write_day(root: Path, date: str, start_day: int, *, rows: int, drift: float, seed: int) -> None:
    """One day's batch without its truth, and its future label reports in the demo's world."""
    import pandas as pd

    from fraud_assets.synthetic.generate import generate_transactions

    frame = generate_transactions(rows, seed=seed, start_day=start_day, n_days=1, drift=drift)
    ids = [f"{date}-{i:06d}" for i in range(len(frame))]
    batch = frame.drop(columns=[LABEL])
    batch.insert(0, TRANSACTION_ID, ids)
    world = root.joinpath(*WORLD)
    world.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, start_day, 1])
    frauds = np.flatnonzero(frame[LABEL].to_numpy() == 1)
    genuine = rng.choice(np.flatnonzero(frame[LABEL].to_numpy() == 0), GENUINE_CONFIRMATIONS_PER_DAY,
                         replace=False)
    chosen = np.concatenate([frauds, genuine])
    # Days until a report: geometric (most frauds the same or next day, a tail of late ones),
    # capped so the demo's short maturity covers them.
    delays = np.minimum(rng.geometric(0.45, len(chosen)) - 1, MAX_REPORT_DELAY_DAYS)
    labels = pd.DataFrame({
        TRANSACTION_ID: [ids[i] for i in chosen],
        TRANSACTION_DATE: date,
        LABEL: frame[LABEL].to_numpy()[chosen],
        "reported": [(dt.date.fromisoformat(date) + dt.timedelta(days=int(d))).isoformat() for d in delays],
    })
    # One file per (report day, transaction day): the platform groups them by report day name.
    for reported, group in labels.groupby("reported"):
        write_table(group.drop(columns=["reported"]), str(world / f"{reported}_labels_for_{date}.csv"))
    root.joinpath(*WORLD_BATCHES).mkdir(parents=True, exist_ok=True)
    write_table(batch, str(root.joinpath(*WORLD_BATCHES) / f"{date}_transactions.csv"))


def release_reports(root: Path, up_to: str) -> list[str]:
    """Move the reports made by ``up_to`` into data/labels/, where the platform looks."""
    world, labels = root.joinpath(*WORLD), root / "data" / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    released = []
    for path in sorted(world.glob("*.csv")) if world.exists() else []:
        if report_date(path.name) <= up_to:
            path.rename(labels / path.name)
            released.append(path.name)
    return released


def _job(defs, name: str, assets: list[str] | None = None):
    if assets is None:
        return defs.resolve_job_def(name)
    import dagster as dg

    return defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey(a) for a in assets}
    )


def _run(job, instance, *, check: bool = True, **kwargs):
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=kwargs.pop(
        "run_config", {}) | QUIET, **kwargs)
    if check and not result.success:
        raise click.ClickException(f"{job.name} failed ({kwargs}); see `dg dev` for its logs")
    return result


def _scored(location, day: str, version: str | None) -> bool:
    from fraud_assets.defs.day_data import read_predictions

    if version is None:
        return True
    predictions = read_predictions(location, day)
    return not predictions.empty and version in set(predictions["model_version"])


def run_loop(root: Path, defs, instance, dates: list[str], retrain_after: int, storage) -> dict:
    """Replay ``dates``; returns what was done, for the summary."""
    registry = storage.registry()
    done = {"scored": 0, "shadow": 0, "label_files": 0, "trained": 0}
    if registry.production_version() is None:
        click.echo("training the first model on the base file")
        _run(_job(defs, "training_job"), instance)
        done["trained"] += 1
    # Drift is measured as the automation condition would, right after the day is scored.
    score = _job(defs, "", ["daily_predictions", "challenger_predictions", "drift_statistics"])
    labels_job = _job(defs, "labels_job")
    pending = root / "data" / "labels"
    for index, day in enumerate(dates):
        # The platform lives on the replayed day: maturity, training window and the
        # challenge's start count from it.
        os.environ["FRAUD_AS_OF_DATE"] = day
        for arriving in root.joinpath(*WORLD_BATCHES).glob(f"{day}*"):
            (root / "data" / "incoming").mkdir(parents=True, exist_ok=True)
            arriving.rename(root / "data" / "incoming" / arriving.name)
        incoming = list((root / "data" / "incoming").glob(f"{day}*"))
        record = registry.challenger_record() or {}
        # A challenger trained at the end of a replayed day scores in shadow from the next day
        # on, on a second run too: the days before were scored before it existed.
        challenger = record.get("version") if record.get("since") and day > record["since"] else None
        # Scored before (batch processed, shadow scores by the current challenger): skip.
        if incoming or not _scored(storage.challenger_predictions(), day, challenger):
            _run(score, instance, partition_key=day)
            done["scored"] += len(incoming)
            done["shadow"] += challenger is not None
        release_reports(root, day)
        for path in sorted(pending.glob("*.csv")):
            if report_date(path.name) > day:
                continue
            frame = read_label_file(str(path), fs=storage.data().fs)
            days = sorted(set(frame[TRANSACTION_DATE]))
            _run(labels_job, instance,
                 run_config={"ops": {"transaction_labels": {"config": {"files": [path.name]}}}},
                 tags={"dagster/asset_partition_range_start": days[0],
                       "dagster/asset_partition_range_end": days[-1],
                       "fraud/trigger": "fraud demo", "fraud/label_file": path.name})
            done["label_files"] += 1
        history = (registry.challenger_record() or {}).get("history", [])
        if (index == retrain_after and registry.challenger_version() is None and not history
                and not _retrained_before(instance, day)):
            click.echo(f"{day}: retraining on the base file and the labelled days so far")
            before = registry.production_version()
            # A retrained model that fails the quality gate is an outcome the demo shows,
            # not a crash: production keeps serving and no challenge starts.
            trained = _run(_job(defs, "training_job"), instance, check=False,
                           tags={RETRAIN_TAG: day})
            done["trained"] += trained.success
            if not trained.success:
                click.echo(f"{day}: the retrained model failed the quality gate; no challenger")
            if registry.challenger_version() and registry.production_version() == before:
                click.echo(f"{day}: {registry.challenger_version()} scores in shadow from now on")
    perf = _job(defs, "", ["realized_performance"])
    for day in dates:
        _run(perf, instance, partition_key=day)
    evaluation = _run(_job(defs, "", ["challenger_evaluation"]), instance)
    done["evaluation"] = _metadata(evaluation, "challenger_evaluation")
    from fraud_assets.defs.loop_sensors import serving_events

    for event in serving_events(storage, instance):
        instance.report_runless_asset_event(event)
    done["drift"] = {day: _latest_drift_level(instance, day) for day in dates}
    return done


def _retrained_before(instance, day: str) -> bool:
    """Whether an earlier demo already retrained on ``day``: a retraining the gate refused
    leaves no challenger behind, and a second demo must not try it again."""
    import dagster as dg

    return bool(instance.get_run_records(dg.RunsFilter(tags={RETRAIN_TAG: day}), limit=1))


def _latest_drift_level(instance, day: str) -> str:
    """The day's stored drift verdict, so that a second demo, which measures nothing again,
    still shows it."""
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("drift_statistics"), asset_partitions=[day]),
        limit=1,
    ).records
    if not records:
        return "-"
    level = records[0].asset_materialization.metadata.get("drift_level")
    return "-" if level is None else str(level.value)


def _metadata(result, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {key: value.value for key, value in materialization.metadata.items()}
    return {}


def summary(storage, dates: list[str], done: dict) -> list[str]:
    from fraud_assets.cli.performance import read_performance

    first, last = dt.date.fromisoformat(dates[0]), dt.date.fromisoformat(dates[-1])
    rows = read_performance(storage.data(), first, last)
    by_day: dict[str, dict] = {}
    for r in rows:
        by_day.setdefault(r["date"], {})[r["role"]] = r
    drift_levels = done.get("drift", {})
    lines = ["day         production AUPRC (version)      challenger AUPRC (version)      labels       drift"]
    for day in dates:
        roles = by_day.get(day, {})

        def cell(role, roles=roles):
            r = roles.get(role)
            if not r:
                return "-".ljust(30)
            auprc = "-" if r.get("auprc") is None else f"{r['auprc']:.4f}"
            return f"{auprc} ({r['model_version']}, {r['frauds']} frauds)".ljust(30)

        status = "mature" if roles and next(iter(roles.values()))["mature"] else "provisional"
        lines.append(f"{day}  {cell('production')}  {cell('challenger')}  {status:<11}  "
                     f"{drift_levels.get(day, '-')}")
    evaluation = done.get("evaluation", {})
    history = (storage.registry().challenger_record() or {}).get("history", [])
    if evaluation.get("outcome") and evaluation["outcome"] != "no challenge running" or not history:
        reason = evaluation.get("reason")
        lines.append(f"decision: {evaluation.get('outcome', '?')}" + (f": {reason}" if reason else ""))
    else:
        last_decision = history[-1]
        lines.append(f"decision (earlier run): {last_decision['version']} {last_decision['outcome']}: "
                     f"{last_decision['reason']}")
    return lines


