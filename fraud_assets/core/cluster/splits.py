"""Train/validation/test on a cluster: each row's split decided where the row is, by a plan
computed once (cut points in time, or a seeded hash), so no partition needs another's rows.

``time`` cuts at the 60 % and 80 % points of the same order one process sorts by (day, then
Time); rows that share the key at a cut go to the same side, so the parts can differ from one
process's by those ties. ``stratified`` draws each row's part from a hash of its content and
the seed: fraud rates agree between parts in expectation, not exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.dataframe as dd
import numpy as np
import pandas as pd

from fraud_assets.core.data.schema import TIME
from fraud_assets.core.data.splits import DAY_COLUMN

SPLIT = "_split"
TRAIN, VALIDATION, TEST = 0, 1, 2
VALIDATION_FRACTION = TEST_FRACTION = 0.2
# Days are counted from here and weighted so that any Time within a day's source (seconds,
# however many days it spans) sorts inside that day: float64 keeps sub-second steps exact.
_EPOCH = pd.Timestamp("2000-01-01")
_DAY_WEIGHT = 1e10


@dataclass(frozen=True)
class SplitPlan:
    strategy: str
    seed: int = 0
    cuts: tuple[float, float] = (0.0, 0.0)
    validation_fraction: float = VALIDATION_FRACTION
    test_fraction: float = TEST_FRACTION


def order_key(part: pd.DataFrame) -> np.ndarray:
    times = part[TIME].to_numpy(dtype=np.float64)
    if DAY_COLUMN not in part.columns:
        return times
    days = pd.to_datetime(part[DAY_COLUMN].replace("", None), errors="coerce")
    ordinal = ((days - _EPOCH).dt.days).to_numpy(dtype=np.float64, na_value=-1.0)
    return ordinal * _DAY_WEIGHT + times


def plan_splits(
    frame: dd.DataFrame,
    strategy: str,
    seed: int,
    *,
    validation_fraction: float = VALIDATION_FRACTION,
    test_fraction: float = TEST_FRACTION,
) -> SplitPlan:
    if not (0 < validation_fraction and 0 < test_fraction and validation_fraction + test_fraction < 1):
        raise ValueError(f"validation ({validation_fraction}) and test ({test_fraction}) fractions must be "
                         "positive and leave rows to train on")
    fractions = {"validation_fraction": validation_fraction, "test_fraction": test_fraction}
    if strategy == "stratified":
        return SplitPlan("stratified", seed, **fractions)
    if strategy != "time":
        raise ValueError(f"unknown split strategy {strategy!r}; use 'time' or 'stratified'")
    sketches = frame.map_partitions(_key_sketch, meta=_key_sketch(frame._meta)).compute()
    cut_at = (1 - validation_fraction - test_fraction, 1 - test_fraction)
    first, second = merged_quantiles(sketches, cut_at)
    return SplitPlan("time", seed, (first, second), **fractions)


# Each partition describes its keys by this many quantiles; merged, the cut points land
# within about 1/_SKETCH_POINTS of the rows of where an exact sort puts them (Dask's own
# approximate quantile was off by a tenth of the rows on two files).
_SKETCH_POINTS = 2001


def _key_sketch(part: pd.DataFrame) -> pd.DataFrame:
    keys = order_key(part)
    if len(keys) == 0:
        return pd.DataFrame({"rows": pd.Series(dtype="int64"), "key": pd.Series(dtype="float64"),
                             "share": pd.Series(dtype="float64")})
    shares = np.linspace(0.0, 1.0, _SKETCH_POINTS)
    return pd.DataFrame({"rows": len(keys), "key": np.quantile(keys, shares), "share": shares})


def merged_quantiles(sketches: pd.DataFrame, shares: tuple[float, ...]) -> tuple[float, ...]:
    """Quantiles of the union of partitions from each one's sketch, weighted by its rows."""
    parts = [group for _, group in sketches.groupby((sketches["share"] == 0.0).cumsum())]
    total = sum(int(group["rows"].iloc[0]) for group in parts)
    candidates = np.unique(sketches["key"].to_numpy())

    def below(value: np.ndarray) -> np.ndarray:
        share = np.zeros(len(value))
        for group in parts:
            share += group["rows"].iloc[0] * np.interp(value, group["key"], group["share"], left=0.0, right=1.0)
        return share / total

    cdf = below(candidates)
    return tuple(float(candidates[min(np.searchsorted(cdf, share, side="left"), len(candidates) - 1)])
                 for share in shares)


def split_of(part: pd.DataFrame, plan: SplitPlan) -> np.ndarray:
    """Each row's part (TRAIN, VALIDATION or TEST), from the row alone."""
    if plan.strategy == "time":
        key = order_key(part)
        return np.where(key < plan.cuts[0], TRAIN, np.where(key < plan.cuts[1], VALIDATION, TEST)).astype(np.int8)
    # hash_pandas_object ignores its key for numeric columns: the seed is mixed in afterwards,
    # through a second hash, or every seed would draw the same parts.
    content = pd.util.hash_pandas_object(part, index=False).to_numpy(dtype=np.uint64)
    salt = np.uint64((plan.seed * 0x9E3779B97F4A7C15 + 1) % 2**64)
    draw = pd.util.hash_array(content ^ salt) / np.float64(2**64)
    test_below, validation_below = plan.test_fraction, plan.test_fraction + plan.validation_fraction
    return np.where(draw < test_below, TEST, np.where(draw < validation_below, VALIDATION, TRAIN)).astype(np.int8)


def with_splits(frame: dd.DataFrame, plan: SplitPlan) -> dd.DataFrame:
    meta = frame._meta.assign(**{SPLIT: pd.Series(dtype="int8")})
    return frame.map_partitions(lambda part: part.assign(**{SPLIT: split_of(part, plan)}), meta=meta)
