"""Ingestion: the labelled dataset and its train/validation/test splits."""

import dagster as dg
import pandas as pd

from fraud_assets.core.data.schema import LABEL, SECONDS_PER_DAY, TIME, DataValidationError
from fraud_assets.core.data.splits import require_both_classes, split_transactions
from fraud_assets.core.data.tables import read_transactions
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure
from fraud_assets.defs.resources import DatasetSettings, FraudStorage

GROUP = "ingestion"


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"}, retry_policy=TRANSIENT_RETRY)
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
            "dagster/row_count": len(frame),
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
        "dagster/row_count": len(frame),
        "frauds": frauds,
        "prevalence": round(frauds / max(len(frame), 1), 6),
        "time_min": float(frame[TIME].min()),
        "time_max": float(frame[TIME].max()),
    }


@dg.multi_asset(
    group_name=GROUP,
    retry_policy=TRANSIENT_RETRY,
    outs={
        "train_split": dg.AssetOut(description="Earliest rows (by default): fit data.", kinds={"parquet"}),
        "validation_split": dg.AssetOut(
            description="Middle rows: early stopping and threshold choice.", kinds={"parquet"}
        ),
        "test_split": dg.AssetOut(
            description="Latest rows: held out for the quality gate.", kinds={"parquet"}
        ),
    },
)
def transaction_splits(config: SplitConfig, raw_transactions: pd.DataFrame):
    """Train, validation and test splits, in time order unless `strategy: stratified`."""
    splits = split_transactions(
        raw_transactions,
        strategy=config.strategy,
        validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    try:
        require_both_classes(splits, "raw_transactions")
    except DataValidationError as error:
        raise permanent_failure(str(error)) from error
    for name, frame in (
        ("train_split", splits.train),
        ("validation_split", splits.validation),
        ("test_split", splits.test),
    ):
        yield dg.Output(frame, output_name=name, metadata=_split_metadata(frame))
