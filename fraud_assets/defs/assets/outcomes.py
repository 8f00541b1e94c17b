"""Outcomes: labels reported after scoring, and what the models' scores were worth on them."""

import datetime as dt
import posixpath

import dagster as dg
import pandas as pd

from fraud_assets import settings
from fraud_assets.core.data.labels import (
    REPORTED_ON,
    TRANSACTION_DATE,
    check_known,
    merge_labels,
    read_label_file,
    report_date,
    with_labels,
)
from fraud_assets.core.data.schema import LABEL, DataValidationError
from fraud_assets.core.data.tables import is_table_file, write_table
from fraud_assets.core.monitoring.performance import (
    is_mature,
    known_share_at_age,
    realized_figures,
    report_delay_days,
)
from fraud_assets.defs import catalog
from fraud_assets.defs.automation import LABELS_LOOKBACK, after_inputs_update, when_labels_mature
from fraud_assets.defs.batches import move_to, quarantine
from fraud_assets.defs.day_data import (
    known_transactions,
    labels_path,
    read_day_labels,
    read_predictions,
)
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure
from fraud_assets.defs.freshness import freshness_policy
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.resources import DatasetSettings, FraudStorage, MetricsPusher

GROUP = "outcomes"


class LabelFilesConfig(dg.Config):
    files: list[str] = []
    """New label files (names under labels/) to validate and apply; the label sensor sets
    this. Empty: rebuild the days from the label files applied before."""


def processed_labels_prefix(dataset: DatasetSettings) -> str:
    return posixpath.join(dataset.labels_prefix, "processed")


def _label_file_paths(data, folder: str) -> list[str]:
    if not data.fs.exists(data.path(folder)):
        return []
    return sorted(
        p for p in data.fs.ls(data.path(folder), detail=False)
        if is_table_file(p) and report_date(p) is not None
    )


def _applied_labels(data, dataset: DatasetSettings, first_day: str) -> list[pd.DataFrame]:
    """Labels of every file applied before that may name ``first_day`` or a later day (a
    fraud is reported on or after its transaction day)."""
    frames = []
    for path in _label_file_paths(data, processed_labels_prefix(dataset)):
        if report_date(path) >= first_day:
            frames.append(read_label_file(path, fs=data.fs, source=data.display(path)))
    return frames


@dg.asset(
    group_name=GROUP,
    owners=catalog.OWNERS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    # No edge from daily_predictions, though labels are checked against it: labels feed the
    # next training, which feeds scoring, and Dagster's graph has no cycles. The loop closes
    # in time, not in the graph.
    tags=catalog.tags("outcomes", "labels"),
    code_version=catalog.code_version(__name__, "transaction_labels"),
    metadata=catalog.table(catalog.LABELS_SCHEMA),
)
def transaction_labels(
    context: dg.AssetExecutionContext,
    config: LabelFilesConfig,
    storage: FraudStorage,
    dataset: DatasetSettings,
) -> dg.MaterializeResult:
    """Every label known for the transactions of each day, one row per labelled transaction:
    `transaction_date`, `batch_file`, `transaction_id`, `Class`, `reported_on`, `label_file`.

    Label files land in `labels/` named by the day they were reported; the label sensor runs
    this asset once per file over the days the file names. The file is validated whole first
    (columns, dates, `Class` 0 or 1, duplicates, and every label naming a transaction scored
    that day): a bad file moves to `quarantine/` with the reason and nothing of it is
    applied. A good file is merged with the labels known before (a later report of the same
    transaction wins, the same file twice changes nothing) and moves to `labels/processed/`.
    """
    data = storage.data()
    days = context.partition_keys
    new_files = []
    for name in config.files:
        pending = data.path(dataset.labels_prefix, name)
        done = data.path(processed_labels_prefix(dataset), name)
        # A re-executed run finds its file already applied: nothing to do twice.
        path = pending if data.fs.exists(pending) else done if data.fs.exists(done) else None
        if path is None:
            raise permanent_failure(f"label file {name} is neither in labels/ nor labels/processed/")
        if path == pending:
            new_files.append(path)

    known_days: dict = {}

    def known_by_day(day: str):
        if day not in known_days:
            known_days[day] = known_transactions(read_predictions(storage.predictions(), day))
        return known_days[day]

    new_labels = []
    for path in new_files:
        source = data.display(path)
        try:
            labels = read_label_file(path, fs=data.fs, source=source)
            outside = sorted(set(labels[TRANSACTION_DATE]) - set(days))
            if outside:
                raise DataValidationError(source, [f"labels for days outside this run: {outside[:5]}"])
            for day, day_labels in labels.groupby(TRANSACTION_DATE):
                check_known(day_labels, known_by_day(day), source, day)
        except DataValidationError as error:
            moved = quarantine(data, path, dataset.quarantine_prefix, str(error))
            raise permanent_failure(
                f"label file rejected and quarantined to {data.display(moved)}: {error}",
                rejected=dg.MetadataValue.text(str(error)),
            ) from error
        new_labels.append(labels)

    known_before = _applied_labels(data, dataset, days[0])
    rows, frauds = 0, 0
    for day in days:
        # Every label names its batch once resolved, so one transaction is one key however
        # its reports named it.
        known = known_by_day(day)
        merged = merge_labels(
            [known.resolve(frame[frame[TRANSACTION_DATE] == day]) for frame in (*known_before, *new_labels)]
        )
        _, path = labels_path(storage, day)
        write_table(merged, path, fs=data.fs)
        # One run may cover several days: each day's materialisation gets its own figures.
        context.add_asset_metadata(
            {
                catalog.PARTITION_ROW_COUNT: len(merged),
                catalog.URI: catalog.path_uri(data, path),
                "frauds_in_day": int((merged[LABEL] == 1).sum()),
            },
            partition_key=day,
        )
        rows += len(merged)
        frauds += int((merged[LABEL] == 1).sum())
    # Moved last: until every day is written, a re-run applies the file again (idempotently).
    for path in new_files:
        move_to(data, path, processed_labels_prefix(dataset))
    return dg.MaterializeResult(
        metadata={
            "label_files_applied": dg.MetadataValue.json([posixpath.basename(p) for p in new_files]),
            "labels": rows,
            "frauds": frauds,
            "days": len(days),
        }
    )


def _known_share(storage: FraudStorage, day: str, today: dt.date, maturity: int) -> float | None:
    """Share of the day's frauds reported by now, from report delays on recent mature days."""
    age = (today - dt.date.fromisoformat(day)).days
    delays = []
    for back in range(maturity, maturity + 28):
        mature_day = (today - dt.timedelta(days=back)).isoformat()
        if not daily_partitions.has_partition_key(mature_day):
            break
        labels = read_day_labels(storage, mature_day)
        frauds = labels[labels[LABEL] == 1]
        delays.extend(report_delay_days(frauds[TRANSACTION_DATE], frauds[REPORTED_ON]))
    return known_share_at_age(delays, age)


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _role_figures(storage, day, role, location, labels, mature, known_share):
    predictions = read_predictions(location, day)
    if predictions.empty:
        return None
    versions = sorted(set(predictions["model_version"]))
    manifest = storage.registry().manifest(versions[-1])
    return realized_figures(
        date=day,
        role=role,
        model_version=", ".join(versions),
        threshold=float(manifest["threshold"]),
        scores=predictions["fraud_probability"].to_numpy(),
        labels=with_labels(predictions, labels),
        mature=mature,
        missed_fraud_cost=settings.missed_fraud_cost(),
        false_alert_cost=settings.false_alert_cost(),
        known_fraud_share=known_share,
    )


@dg.asset(
    group_name=GROUP,
    owners=catalog.OWNERS,
    partitions_def=daily_partitions,
    deps=["transaction_labels", "daily_predictions", "challenger_predictions"],
    kinds={"json"},
    retry_policy=TRANSIENT_RETRY,
    automation_condition=after_inputs_update(LABELS_LOOKBACK) | when_labels_mature(),
    tags=catalog.tags("monitoring", "performance"),
    code_version=catalog.code_version(__name__, "realized_performance"),
    freshness_policy=freshness_policy("realized_performance"),
)
def realized_performance(
    context: dg.AssetExecutionContext, storage: FraudStorage, metrics: MetricsPusher
) -> dg.MaterializeResult:
    """What the day's scores were worth once labels came in, per model role (production, and
    the challenger scored in shadow): AUPRC, precision and recall at the model's threshold,
    alerts, frauds caught and missed, the cost at the configured costs, the share of the day's
    frauds known so far, and whether the day is still provisional (younger than
    `FRAUD_LABEL_MATURITY_DAYS`) or mature. Runs again whenever new labels for the day arrive.
    """
    day = context.partition_key
    today = settings.today()
    maturity = settings.label_maturity_days()
    mature = is_mature(day, today, maturity)
    labels = read_day_labels(storage, day)
    known_share = None if mature else _known_share(storage, day, today, maturity)
    figures = [
        f for f in (
            _role_figures(storage, day, "production", storage.predictions(), labels, mature, known_share),
            _role_figures(storage, day, "challenger", storage.challenger_predictions(), labels, mature,
                          known_share),
        ) if f is not None
    ]
    if not figures:
        raise permanent_failure(f"no predictions for {day}: nothing to measure")
    for figure in figures:
        metrics.realized_performance(
            role=figure.role, model_version=figure.model_version, day=day, mature=mature,
            rows=figure.rows, frauds=figure.frauds, alerts=figure.alerts,
            auprc=_number(figure.auprc), precision=_number(figure.precision),
            recall=_number(figure.recall), cost=figure.cost,
            known_fraud_share=_number(figure.known_fraud_share),
        )
    metadata: dict = {"mature": mature, "labels_known": len(labels)}
    for figure in figures:
        for key in ("auprc", "precision", "recall", "alerts", "caught", "missed", "frauds", "cost",
                    "known_fraud_share"):
            value = getattr(figure, key)
            if value is not None:
                metadata[f"{figure.role}_{key}"] = catalog.figure(value) if isinstance(value, float) else value
        metadata[f"{figure.role}_model_version"] = figure.model_version
    return dg.MaterializeResult(
        value={"date": day, "mature": mature, "figures": [f.to_dict() for f in figures]},
        metadata=metadata,
    )

