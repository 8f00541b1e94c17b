"""Labelled history for retraining: mature days' scored batches with their labels joined."""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath

import numpy as np
import pandas as pd

from fraud_assets import settings
from fraud_assets.core.data.labels import BATCH_FILE, TRANSACTION_ID, batch_stem
from fraud_assets.core.data.schema import FEATURE_COLUMNS, LABEL, find_id_column
from fraud_assets.core.data.splits import DAY_COLUMN
from fraud_assets.core.data.tables import read_transactions
from fraud_assets.core.monitoring.performance import is_mature
from fraud_assets.defs.batches import list_batch_files, processed_folder
from fraud_assets.defs.day_data import read_day_labels, unscored_batch_days, with_labels
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.resources import DatasetSettings, FraudStorage


def window_days(today: dt.date, window: int, maturity: int) -> list[str]:
    """Mature days of the training window, oldest first."""
    days = []
    for back in range(window, -1, -1):
        day = (today - dt.timedelta(days=back)).isoformat()
        if is_mature(day, today, maturity) and daily_partitions.has_partition_key(day):
            days.append(day)
    return days


def _batch_rows(storage: FraudStorage, path: str) -> pd.DataFrame:
    data = storage.data()
    frame = read_transactions(path, fs=data.fs, require_label=False, source=data.display(path))
    id_column = find_id_column(list(frame.columns))
    ids = frame[id_column].astype(str) if id_column else pd.Series(np.arange(len(frame)).astype(str))
    rows = frame.loc[:, list(FEATURE_COLUMNS)].copy()
    rows[BATCH_FILE] = batch_stem(path)
    rows[TRANSACTION_ID] = ids.to_numpy()
    return rows


def labelled_days_frame(storage: FraudStorage, dataset: DatasetSettings, log):
    """(rows of the window's mature days with Class, the days used, a fingerprint function
    of the base file's size that hashes everything the dataset holds)."""
    today = settings.today()
    digest = hashlib.sha256()
    frames, used = [], []
    unscored = unscored_batch_days(storage, dataset)
    for day in window_days(today, settings.training_window_days(), settings.label_maturity_days()):
        # Only scored batches: labels name scored transactions, so rows of a day still waiting
        # in incoming/ would all count as genuine.
        if day in unscored:
            log.warning("training window: %s skipped, it has batch files not scored yet", day)
            continue
        batches = list_batch_files(storage.data(), day, (processed_folder(dataset.processed_prefix, day),))
        if not batches:
            continue
        labels = read_day_labels(storage, day)
        parts = [_batch_rows(storage, path) for path in batches]
        rows = pd.concat(parts, ignore_index=True)
        rows[LABEL] = with_labels(rows, labels)
        rows[DAY_COLUMN] = day
        frames.append(rows.drop(columns=[BATCH_FILE, TRANSACTION_ID]))
        used.append(day)
        digest.update(day.encode())
        for path in batches:
            digest.update(f"{posixpath.basename(path)}:{len(rows)}".encode())
        digest.update(pd.util.hash_pandas_object(labels, index=False).to_numpy().tobytes())
        log.info("training window: %s, %d rows, %d frauds", day, len(rows), int(rows[LABEL].sum()))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def fingerprint(base_rows: int, base_frauds: int) -> str:
        final = digest.copy()
        final.update(f"base:{base_rows}:{base_frauds}".encode())
        return final.hexdigest()

    return frame, used, fingerprint
