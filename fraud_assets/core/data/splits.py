"""Train/validation/test splits: by time by default, stratified on request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from fraud_assets.core.data.schema import LABEL, TIME, DataValidationError

SplitStrategy = Literal["time", "stratified"]


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def split_transactions(
    frame: pd.DataFrame,
    *,
    strategy: SplitStrategy = "time",
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Splits:
    """Split rows into train, validation and test.

    ``time`` keeps the earliest rows for training and the latest for testing, which is how the
    model meets data in production; ``stratified`` shuffles while keeping the fraud rate
    equal in every part, for small samples where a time split would leave a part fraud-free.
    """
    if not 0 < validation_fraction < 1 or not 0 < test_fraction < 1:
        raise ValueError("validation_fraction and test_fraction must lie in (0, 1)")
    if validation_fraction + test_fraction >= 1:
        raise ValueError("validation_fraction + test_fraction must leave rows for training")
    if strategy == "time":
        order = _time_order(frame)
        n = len(order)
        train_end = int(round(n * (1 - validation_fraction - test_fraction)))
        valid_end = int(round(n * (1 - test_fraction)))
        parts = order[:train_end], order[train_end:valid_end], order[valid_end:]
    elif strategy == "stratified":
        parts = _stratified_positions(
            frame[LABEL].to_numpy(), validation_fraction, test_fraction, seed
        )
    else:
        raise ValueError(f"unknown split strategy {strategy!r}; use 'time' or 'stratified'")
    # Time parts are already in time order; stratified parts go back to file order.
    if strategy == "stratified":
        parts = tuple(np.sort(p) for p in parts)
    train, validation, test = (frame.iloc[p].reset_index(drop=True) for p in parts)
    return Splits(train=train, validation=validation, test=test)


# A dataset assembled from several sources (the base file, then labelled days) says which day
# each row belongs to: each source counts Time from its own start, so Time alone cannot order
# rows across sources. The base file's rows carry an empty day and come first.
DAY_COLUMN = "transaction_date"


def _time_order(frame: pd.DataFrame) -> np.ndarray:
    times = frame[TIME].to_numpy()
    if DAY_COLUMN not in frame.columns:
        return np.argsort(times, kind="stable")
    return np.lexsort((times, frame[DAY_COLUMN].astype(str).to_numpy()))


def _stratified_positions(labels, validation_fraction, test_fraction, seed):
    rng = np.random.default_rng(seed)
    train, validation, test = [], [], []
    for value in np.unique(labels):
        positions = rng.permutation(np.flatnonzero(labels == value))
        n = len(positions)
        n_test = int(round(n * test_fraction))
        n_valid = int(round(n * validation_fraction))
        test.append(positions[:n_test])
        validation.append(positions[n_test : n_test + n_valid])
        train.append(positions[n_test + n_valid :])
    return tuple(np.concatenate(part) for part in (train, validation, test))


# Early stopping and the threshold read validation, the gate reads test, training reads train:
# each is meaningless without both classes.
MIN_ROWS_PER_CLASS = 1


def require_both_classes(splits: Splits, source: str) -> None:
    """Refuse data that cannot train a model, saying what each split needs and has.

    A file with one class, or a few hundred rows with a fraud or two, otherwise failed deep
    inside XGBoost or the metrics with a traceback.
    """
    counts = {
        name: (int(part[LABEL].sum()), len(part))
        for name, part in (("train", splits.train), ("validation", splits.validation),
                           ("test", splits.test))
    }
    short = [
        name for name, (frauds, rows) in counts.items()
        if frauds < MIN_ROWS_PER_CLASS or rows - frauds < MIN_ROWS_PER_CLASS
    ]
    if short:
        has = ", ".join(f"{name} has {frauds} of {rows} rows" for name, (frauds, rows) in counts.items())
        raise DataValidationError(
            source,
            [f"too few frauds (or genuine rows) to train: each of train, validation and test "
             f"needs at least {MIN_ROWS_PER_CLASS} fraud and {MIN_ROWS_PER_CLASS} genuine row; "
             f"frauds per split: {has}"],
        )
