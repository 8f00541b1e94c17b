"""Labelled history for retraining: mature days' scored batches with their labels joined."""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
from dataclasses import dataclass, field

import pandas as pd

from fraud_assets import settings
from fraud_assets.core.data.labels import BATCH_FILE, TRANSACTION_ID, batch_rows, with_labels
from fraud_assets.core.data.schema import LABEL
from fraud_assets.core.data.splits import DAY_COLUMN
from fraud_assets.core.data.tables import read_transactions
from fraud_assets.core.monitoring.performance import is_mature
from fraud_assets.defs.batches import list_batch_files, processed_folder
from fraud_assets.defs.day_data import read_day_labels, unscored_batch_days
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


@dataclass(frozen=True)
class LabelledDay:
    """A mature day of the training window: its scored batch files and the labels reported
    for it."""

    day: str
    batches: list[str]
    labels: pd.DataFrame = field(compare=False)


def labelled_window(storage: FraudStorage, dataset: DatasetSettings, log) -> list[LabelledDay]:
    """The window's mature days that have scored batches, oldest first."""
    today = settings.today()
    unscored = unscored_batch_days(storage, dataset)
    days = []
    for day in window_days(today, settings.training_window_days(), settings.label_maturity_days()):
        # Only scored batches: labels name scored transactions, so rows of a day still waiting
        # in incoming/ would all count as genuine.
        if day in unscored:
            log.warning("training window: %s skipped, it has batch files not scored yet", day)
            continue
        batches = list_batch_files(storage.data(), day, (processed_folder(dataset.processed_prefix, day),))
        if batches:
            days.append(LabelledDay(day, batches, read_day_labels(storage, day)))
    return days


def window_fingerprint(days: list[LabelledDay], rows_per_day: list[int]):
    """A function of the base file's rows and frauds that hashes everything the dataset holds:
    its days, their files, each day's rows and its labels."""
    digest = hashlib.sha256()
    for labelled, rows in zip(days, rows_per_day, strict=True):
        digest.update(labelled.day.encode())
        for path in labelled.batches:
            # Each file with its day's total rows (not its own): the fingerprint as it has always
            # been computed, so that the data versions already recorded stay comparable.
            digest.update(f"{posixpath.basename(path)}:{rows}".encode())
        digest.update(pd.util.hash_pandas_object(labelled.labels, index=False).to_numpy().tobytes())

    def fingerprint(base_rows: int, base_frauds: int) -> str:
        final = digest.copy()
        final.update(f"base:{base_rows}:{base_frauds}".encode())
        return final.hexdigest()

    return fingerprint


def labelled_days_frame(storage: FraudStorage, dataset: DatasetSettings, log):
    """(rows of the window's mature days with Class, the days used, a fingerprint function
    of the base file's size that hashes everything the dataset holds), read in this process."""
    data = storage.data()
    frames = []
    days = labelled_window(storage, dataset, log)
    for labelled in days:
        parts = [batch_rows(read_transactions(path, fs=data.fs, require_label=False, source=data.display(path)), path)
                 for path in labelled.batches]
        rows = pd.concat(parts, ignore_index=True)
        rows[LABEL] = with_labels(rows, labelled.labels)
        rows[DAY_COLUMN] = labelled.day
        frames.append(rows.drop(columns=[BATCH_FILE, TRANSACTION_ID]))
        log_day(log, labelled.day, len(rows), int(rows[LABEL].sum()))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, [d.day for d in days], window_fingerprint(days, [len(f) for f in frames])


def log_day(log, day: str, rows: int, frauds: int) -> None:
    log.info("training window: %s, %d rows, %d frauds", day, rows, frauds)
