"""One transaction day as the loop sees it: its scored batches, its predictions per model role,
and the labels known for it. Shared by the label, performance, challenger and training assets.
"""

from __future__ import annotations

import posixpath

import pandas as pd
import pyarrow.parquet as pq

from fraud_assets.core.data.labels import (
    BATCH_FILE,
    LABEL_COLUMNS,
    TRANSACTION_ID,
    KnownTransactions,
    batch_stem,
)
from fraud_assets.core.data.schema import LABEL
from fraud_assets.core.storage.locations import Location
from fraud_assets.defs.batches import list_batch_files, processed_folder
from fraud_assets.defs.resources import DatasetSettings, FraudStorage

LABELS_ASSET_PREFIX = ("assets", "transaction_labels")


def prediction_files(location: Location, day: str) -> list[str]:
    folder = location.path(f"date={day}")
    if not location.fs.exists(folder):
        return []
    return sorted(p for p in location.fs.ls(folder, detail=False) if p.endswith(".parquet"))


def read_predictions(location: Location, day: str) -> pd.DataFrame:
    """A day's predictions: batch stem, transaction id (as text), score, flag, model version."""
    frames = []
    for path in prediction_files(location, day):
        with location.fs.open(path, "rb") as handle:
            table = pq.read_table(handle, columns=["transaction_id", "fraud_probability", "model_version"])
        frame = table.to_pandas()
        frame.insert(0, BATCH_FILE, batch_stem(path))
        frame[TRANSACTION_ID] = _id_text(frame[TRANSACTION_ID])
        frames.append(frame)
    if not frames:
        return pd.DataFrame(
            {BATCH_FILE: [], TRANSACTION_ID: [], "fraud_probability": [], "model_version": []}
        )
    return pd.concat(frames, ignore_index=True)


def _id_text(ids: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(ids):
        return ids.map(lambda v: str(int(v)) if float(v).is_integer() else repr(v))
    return ids.astype(str)


def known_transactions(predictions: pd.DataFrame) -> KnownTransactions:
    return KnownTransactions(
        {stem: set(group[TRANSACTION_ID]) for stem, group in predictions.groupby(BATCH_FILE, sort=False)}
    )


def labels_path(storage: FraudStorage, day: str) -> tuple[Location, str]:
    data = storage.data()
    return data, data.path(*LABELS_ASSET_PREFIX, f"{day}.parquet")


def read_day_labels(storage: FraudStorage, day: str) -> pd.DataFrame:
    """Every label known for ``day`` (empty when none has been reported)."""
    data, path = labels_path(storage, day)
    if not data.fs.exists(path):
        return pd.DataFrame({c: pd.Series(dtype="int8" if c == LABEL else object) for c in LABEL_COLUMNS})
    with data.fs.open(path, "rb") as handle:
        return pd.read_parquet(handle)


def day_batch_files(storage: FraudStorage, dataset: DatasetSettings, day: str) -> list[str]:
    return list_batch_files(
        storage.data(), day, (dataset.incoming_prefix, processed_folder(dataset.processed_prefix, day))
    )


def unscored_batch_days(storage: FraudStorage, dataset: DatasetSettings) -> set[str]:
    """Days with batch files still waiting in incoming/ (their labels must wait too)."""
    from fraud_assets.defs.batches import batch_date

    data = storage.data()
    folder = data.path(dataset.incoming_prefix)
    if not data.fs.exists(folder):
        return set()
    return {
        day for day in (batch_date(posixpath.basename(p)) for p in data.fs.ls(folder, detail=False)) if day
    }
