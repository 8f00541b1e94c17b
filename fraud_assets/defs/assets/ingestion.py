"""Ingestion: the labelled dataset and its train/validation/test splits."""

import dagster as dg
import pandas as pd

from fraud_assets.core.data.schema import LABEL, SECONDS_PER_DAY, TIME, DataValidationError
from fraud_assets.core.data.splits import DAY_COLUMN, require_both_classes, split_transactions
from fraud_assets.core.data.tables import read_transactions
from fraud_assets.defs import catalog
from fraud_assets.defs.automation import weekly, when_training_data_changes
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure, retry_only_transient
from fraud_assets.defs.resources import DatasetSettings, FraudStorage
from fraud_assets.defs.training_data import labelled_days_frame

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
    context: dg.AssetExecutionContext, storage: FraudStorage, dataset: DatasetSettings
) -> dg.MaterializeResult[pd.DataFrame]:
    """Labelled card transactions in the `creditcard.csv` schema, validated on read.

    A file with missing columns, non-numeric or infinite values, negative amounts or no rows
    fails here with the file, column and row count named; nothing downstream runs.
    """
    data = storage.data()
    source = data.url_of(dataset.raw_dataset_key)
    try:
        frame = read_transactions(data.path(dataset.raw_dataset_key), fs=data.fs, source=source)
    except DataValidationError as error:
        raise permanent_failure(str(error)) from error
    frauds = int(frame[LABEL].sum())
    context.log.info("read %d rows (%d frauds) from %s", len(frame), frauds, source)
    return dg.MaterializeResult(
        value=frame,
        metadata={
            "source": dg.MetadataValue.path(source),
            catalog.ROW_COUNT: len(frame),
            "frauds": frauds,
            "prevalence": round(frauds / len(frame), 6),
            "time_span_days": round(float(frame[TIME].max() - frame[TIME].min()) / SECONDS_PER_DAY, 3),
        },
    )


class SplitConfig(dg.Config):
    strategy: str = "time"
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0


def _split_metadata(frame: pd.DataFrame) -> dict:
    frauds = int(frame[LABEL].sum())
    return {
        catalog.ROW_COUNT: len(frame),
        "frauds": frauds,
        "prevalence": round(frauds / max(len(frame), 1), 6),
        "time_min": round(float(frame[TIME].min()), 3),
        "time_max": round(float(frame[TIME].max()), 3),
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
def transaction_splits(config: SplitConfig, training_dataset: pd.DataFrame):
    """Train, validation and test splits of the training dataset, in time order (the base
    file first, then labelled days) unless `strategy: stratified`."""
    splits = split_transactions(
        training_dataset,
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
        yield dg.Output(frame, output_name=name, metadata=_split_metadata(frame))


@dg.asset(
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    deps=["transaction_labels"],
    automation_condition=weekly(),
    owners=catalog.OWNERS,
    tags=catalog.tags("ingestion", "transactions"),
    code_version=catalog.code_version(__name__, "training_dataset"),
    metadata=catalog.table(catalog.TRAINING_SCHEMA),
)
def training_dataset(
    context: dg.AssetExecutionContext,
    raw_transactions: pd.DataFrame,
    storage: FraudStorage,
    dataset: DatasetSettings,
) -> dg.Output[pd.DataFrame]:
    """What the model trains on: the base labelled file plus every mature labelled day of the
    last `FRAUD_TRAINING_WINDOW_DAYS`, in time order (base first, then day by day). A day's
    rows are its scored batch files with `Class` from the labels reported for it (no report
    within `FRAUD_LABEL_MATURITY_DAYS`: genuine).

    Its data version fingerprints the days and labels it holds: retraining runs only when it
    changes, so a week with no new mature day or label is skipped.
    """
    days_frame, days, fingerprint = labelled_days_frame(storage, dataset, context.log)
    base = raw_transactions.assign(**{DAY_COLUMN: ""})
    frame = pd.concat([base, days_frame], ignore_index=True) if len(days_frame) else base
    version = fingerprint(len(raw_transactions), int(raw_transactions[LABEL].sum()))
    previous = context.instance.get_latest_materialization_event(context.asset_key)
    previous_version = (
        previous.asset_materialization.tags.get("dagster/data_version") if previous and previous.asset_materialization else None
    )
    changed = previous_version != version
    frauds = int(frame[LABEL].sum())
    return dg.Output(
        frame,
        data_version=dg.DataVersion(version),
        metadata={
            catalog.ROW_COUNT: len(frame),
            "frauds": frauds,
            "base_rows": len(raw_transactions),
            "labelled_days": dg.MetadataValue.json(days),
            "labelled_day_count": len(days),
            "labelled_day_frauds": int(days_frame[LABEL].sum()) if len(days_frame) else 0,
            "changed_since_last": changed,
            "retraining": "runs: the data changed" if changed
            else f"skipped: same days and labels as before ({version[:12]})",
        },
    )
