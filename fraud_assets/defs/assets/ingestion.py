"""Ingestion: the labelled dataset and its train/validation/test splits."""

import contextlib
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from fraud_assets.core.data.schema import LABEL, SECONDS_PER_DAY, TIME, DataValidationError
from fraud_assets.core.data.splits import DAY_COLUMN, require_both_classes, split_transactions
from fraud_assets.core.data.tables import read_transactions
from fraud_assets.defs import catalog
from fraud_assets.defs.automation import weekly, when_training_data_changes
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure, retry_only_transient
from fraud_assets.defs.io_managers import StoredTable, TableParts, new_parts_folder
from fraud_assets.defs.resources import DaskCluster, DatasetSettings, FraudStorage
from fraud_assets.defs.training_data import (
    LabelledDay,
    labelled_days_frame,
    labelled_window,
    log_day,
    window_fingerprint,
)

GROUP = "ingestion"


@dg.asset(
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    automation_condition=weekly(),
    owners=catalog.OWNERS,
    tags=catalog.tags("ingestion", "transactions"),
    code_version=catalog.code_version(__name__, "raw_transactions"),
    metadata=catalog.table(catalog.TRANSACTIONS_SCHEMA),
)
def raw_transactions(
    context: dg.AssetExecutionContext, storage: FraudStorage, dataset: DatasetSettings, dask: DaskCluster
) -> dg.MaterializeResult:
    """Labelled card transactions in the `creditcard.csv` schema, validated on read.

    A file with missing columns, non-numeric or infinite values, negative amounts or no rows
    fails here with the file, column and row count named; nothing downstream runs. With a Dask
    scheduler configured (`FRAUD_DASK_SCHEDULER`) a worker reads and validates the file and
    writes it as Parquet parts; its rows never reach this process.
    """
    data = storage.data()
    source = data.url_of(dataset.raw_dataset_key)
    try:
        if dask.configured:
            value, counts = _raw_on_cluster(context, dask, storage, source)
        else:
            value = read_transactions(data.path(dataset.raw_dataset_key), fs=data.fs, source=source)
            counts = _counts(value)
    except DataValidationError as error:
        raise permanent_failure(str(error)) from error
    context.log.info("read %d rows (%d frauds) from %s", counts["rows"], counts["frauds"], source)
    return dg.MaterializeResult(
        value=value,
        metadata={
            "source": dg.MetadataValue.path(source),
            catalog.ROW_COUNT: counts["rows"],
            catalog.FRAUDS: counts["frauds"],
            "prevalence": round(counts["frauds"] / counts["rows"], 6),
            "time_span_days": round((counts["time_max"] - counts["time_min"]) / SECONDS_PER_DAY, 3),
        },
    )


def _counts(frame: pd.DataFrame) -> dict:
    return {
        "rows": len(frame),
        "frauds": int(frame[LABEL].sum()),
        "time_min": float(frame[TIME].min()) if len(frame) else 0.0,
        "time_max": float(frame[TIME].max()) if len(frame) else 0.0,
    }


def _raw_on_cluster(context, dask: DaskCluster, storage: FraudStorage, source: str):
    # Imported only on this path: without a scheduler no Dask module is loaded.
    from fraud_assets.core.cluster.datasets import CopyJob, copy_as_parts

    with new_parts_folder(storage, "raw_transactions") as (location, folder), dask.client() as client:
        context.log.info("reading %s on the Dask cluster at %s", source, dask.scheduler)
        [counts] = copy_as_parts(client, [CopyJob(source, stem="base", keep_all_columns=True)],
                                 location.display(folder), location.storage_options)
    return TableParts(folder, counts["rows"]), counts


class SplitConfig(dg.Config):
    strategy: str = "time"
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0


def _split_metadata(counts: dict) -> dict:
    return {
        catalog.ROW_COUNT: counts["rows"],
        "frauds": counts["frauds"],
        "prevalence": round(counts["frauds"] / max(counts["rows"], 1), 6),
        "time_min": round(counts["time_min"], 3),
        "time_max": round(counts["time_max"], 3),
    }


_SPLIT_CATALOG = {
    "owners": catalog.OWNERS,
    "tags": catalog.tags("ingestion", "transactions"),
    "code_version": catalog.code_version(__name__, "transaction_splits"),
    "metadata": catalog.table(catalog.TRAINING_SCHEMA),
}


@dg.multi_asset(
    group_name=GROUP,
    retry_policy=TRANSIENT_RETRY,
    ins={"training_dataset": dg.AssetIn(input_manager_key="stored_table_loader")},
    outs={
        "train_split": dg.AssetOut(
            description="Earliest rows of the training dataset (in time order by default): what the "
            "model is fitted on.",
            kinds={"parquet"},
            automation_condition=when_training_data_changes(),
            **_SPLIT_CATALOG,
        ),
        "validation_split": dg.AssetOut(
            description="Rows after the training split: early stopping and the choice of the decision "
            "threshold.",
            kinds={"parquet"},
            automation_condition=when_training_data_changes(),
            **_SPLIT_CATALOG,
        ),
        "test_split": dg.AssetOut(
            description="Latest rows, held out: the quality gate's test AUPRC and the metrics the model "
            "reports.",
            kinds={"parquet"},
            automation_condition=when_training_data_changes(),
            **_SPLIT_CATALOG,
        ),
    },
)
@retry_only_transient
def transaction_splits(
    context: dg.AssetExecutionContext,
    config: SplitConfig,
    training_dataset: StoredTable,
    storage: FraudStorage,
    dask: DaskCluster,
):
    """Train, validation and test splits of the training dataset, in time order (the base
    file first, then labelled days) unless `strategy: stratified`. With a Dask scheduler
    configured the workers decide each row's split where the row is and write the splits
    (`docs/dask.md`)."""
    if dask.configured:
        yield from _splits_on_cluster(context, config, training_dataset, storage, dask)
        return
    splits = split_transactions(
        training_dataset.load(),
        strategy=config.strategy,
        validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    try:
        require_both_classes(splits, "training_dataset")
    except DataValidationError as error:
        raise permanent_failure(str(error)) from error
    for name, frame in (
        ("train_split", splits.train),
        ("validation_split", splits.validation),
        ("test_split", splits.test),
    ):
        yield dg.Output(frame, output_name=name, metadata=_split_metadata(_counts(frame)))


def _splits_on_cluster(context, config: SplitConfig, training_dataset: StoredTable, storage, dask):
    from fraud_assets.core.cluster.datasets import split_as_parts

    with contextlib.ExitStack() as folders, dask.client() as client:
        opened = {name: folders.enter_context(new_parts_folder(storage, f"{name}_split"))
                  for name in ("train", "validation", "test")}
        context.log.info("splitting %s on the Dask cluster at %s", training_dataset.path, dask.scheduler)
        try:
            counts = split_as_parts(
                client, training_dataset.tables(),
                {name: location.display(folder) for name, (location, folder) in opened.items()},
                strategy=config.strategy, seed=config.seed,
                validation_fraction=config.validation_fraction, test_fraction=config.test_fraction,
            )
        except DataValidationError as error:
            raise permanent_failure(str(error)) from error
    # Dagster stops this generator when storing an output fails: the splits not yet published
    # then have no pointer that would ever name or remove them.
    unpublished = dict(opened)
    try:
        for name, (_, folder) in opened.items():
            yield dg.Output(TableParts(folder, counts[name]["rows"]), output_name=f"{name}_split",
                            metadata=_split_metadata(counts[name]))
            del unpublished[name]
    finally:
        for location, folder in unpublished.values():
            with contextlib.suppress(Exception):
                location.fs.rm(folder, recursive=True)


@dg.asset(
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    deps=["transaction_labels"],
    ins={"raw_transactions": dg.AssetIn(input_manager_key="stored_table_loader")},
    automation_condition=weekly(),
    owners=catalog.OWNERS,
    tags=catalog.tags("ingestion", "transactions"),
    code_version=catalog.code_version(__name__, "training_dataset"),
    metadata=catalog.table(catalog.TRAINING_SCHEMA),
)
@retry_only_transient
def training_dataset(
    context: dg.AssetExecutionContext,
    raw_transactions: StoredTable,
    storage: FraudStorage,
    dataset: DatasetSettings,
    dask: DaskCluster,
) -> dg.Output:
    """What the model trains on: the base labelled file plus every mature labelled day of the
    last `FRAUD_TRAINING_WINDOW_DAYS`, in time order (base first, then day by day). A day's
    rows are its scored batch files with `Class` from the labels reported for it (no report
    within `FRAUD_LABEL_MATURITY_DAYS`: genuine). With a Dask scheduler configured the workers
    read the files, join the labels and write the dataset as Parquet parts.

    Its data version fingerprints the days and labels it holds: retraining runs only when it
    changes, so a week with no new mature day or label is skipped.
    """
    if dask.configured:
        built = _training_dataset_on_cluster(context, raw_transactions, storage, dataset, dask)
        value, base, day_frauds = built.parts, built.base, built.day_frauds
        fingerprint = window_fingerprint(built.days, built.rows_per_day)
        used = [d.day for d in built.days]
        rows = base["rows"] + sum(built.rows_per_day)
        frauds = base["frauds"] + day_frauds
    else:
        raw = raw_transactions.load()
        days_frame, used, fingerprint = labelled_days_frame(storage, dataset, context.log)
        base = _counts(raw)
        value = pd.concat([raw.assign(**{DAY_COLUMN: ""}), days_frame], ignore_index=True) if len(days_frame) \
            else raw.assign(**{DAY_COLUMN: ""})
        rows, frauds = len(value), int(value[LABEL].sum())
        day_frauds = int(days_frame[LABEL].sum()) if len(days_frame) else 0
    version = fingerprint(base["rows"], base["frauds"])
    previous = context.instance.get_latest_materialization_event(context.asset_key)
    previous_version = (
        previous.asset_materialization.tags.get("dagster/data_version") if previous and previous.asset_materialization else None
    )
    changed = previous_version != version
    return dg.Output(
        value,
        data_version=dg.DataVersion(version),
        metadata={
            catalog.ROW_COUNT: rows,
            "frauds": frauds,
            "base_rows": base["rows"],
            "labelled_days": dg.MetadataValue.json(used),
            "labelled_day_count": len(used),
            "labelled_day_frauds": day_frauds,
            "changed_since_last": changed,
            "retraining": "runs: the data changed" if changed
            else f"skipped: same days and labels as before ({version[:12]})",
        },
    )


@dataclass(frozen=True)
class _BuiltOnCluster:
    parts: TableParts
    base: dict  # rows, frauds and Time's range of the base file
    days: list[LabelledDay]
    rows_per_day: list[int]
    day_frauds: int


def _training_dataset_on_cluster(context, raw_transactions: StoredTable, storage, dataset, dask) -> _BuiltOnCluster:
    from fraud_assets.core.cluster.datasets import CopyJob, copy_as_parts, merged_counts

    days = labelled_window(storage, dataset, context.log)
    data = storage.data()
    # Part names sort in the dataset's order: the base file's parts, then day by day.
    base_jobs = [CopyJob(url, stem=f"0-base-{number:05d}", day="")
                 for number, url in enumerate(raw_transactions.tables().urls)]
    day_jobs = [[CopyJob(data.display(path), stem=f"1-{labelled.day}-{number:05d}", day=labelled.day,
                         labels=labelled.labels) for number, path in enumerate(labelled.batches)]
                for labelled in days]
    with new_parts_folder(storage, "training_dataset") as (location, folder), dask.client() as client:
        context.log.info("building the training dataset on the Dask cluster at %s", dask.scheduler)
        counts = copy_as_parts(client, [*base_jobs, *(job for jobs in day_jobs for job in jobs)],
                               location.display(folder), location.storage_options)
    base = merged_counts(counts[:len(base_jobs)])
    rows_per_day, day_frauds, offset = [], 0, len(base_jobs)
    for labelled, jobs in zip(days, day_jobs, strict=True):
        day = merged_counts(counts[offset:offset + len(jobs)])
        offset += len(jobs)
        rows_per_day.append(day["rows"])
        day_frauds += day["frauds"]
        log_day(context.log, labelled.day, day["rows"], day["frauds"])
    return _BuiltOnCluster(TableParts(folder, base["rows"] + sum(rows_per_day)), base, days, rows_per_day, day_frauds)
