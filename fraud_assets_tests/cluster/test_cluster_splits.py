"""The cluster's split plan, decided row by row, against the single-process split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_assets.core.cluster.splits import (
    TEST,
    TRAIN,
    VALIDATION,
    SplitPlan,
    _key_sketch,
    merged_quantiles,
    split_of,
)
from fraud_assets.core.data.splits import DAY_COLUMN, split_transactions


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"Time": rng.exponential(50_000, rows).round(), "Class": rng.random(rows) < 0.01})


@pytest.mark.parametrize("sizes", [(30_000, 30_000), (50_000, 1_000, 9_000), (60_000,)])
def test_time_cuts_from_sketches_give_one_process_split_sizes(sizes):
    parts = [_frame(n, seed) for seed, n in enumerate(sizes)]
    sketches = pd.concat([_key_sketch(part) for part in parts], ignore_index=True)
    plan = SplitPlan("time", 0, merged_quantiles(sketches, (0.6, 0.8)))
    codes = np.concatenate([split_of(part, plan) for part in parts])
    single = split_transactions(pd.concat(parts, ignore_index=True), strategy="time")
    for code, expected in ((TRAIN, single.train), (VALIDATION, single.validation), (TEST, single.test)):
        assert abs(int((codes == code).sum()) - len(expected)) <= 0.002 * len(codes)


def test_base_rows_without_a_day_come_before_every_labelled_day():
    frame = pd.DataFrame({"Time": [5.0, 90_000.0, 1.0, 2.0], DAY_COLUMN: ["2024-03-02", "", "2024-03-01", ""]})
    sketch = _key_sketch(frame)
    plan = SplitPlan("time", 0, merged_quantiles(sketch, (0.5, 0.75)))
    assert split_of(frame, plan).tolist() == [TEST, TRAIN, VALIDATION, TRAIN]


def test_stratified_draws_depend_on_the_seed_and_not_on_partitioning():
    frame = _frame(20_000, 7)
    whole = split_of(frame, SplitPlan("stratified", 3))
    pieces = np.concatenate([split_of(frame.iloc[:7_000], SplitPlan("stratified", 3)),
                             split_of(frame.iloc[7_000:], SplitPlan("stratified", 3))])
    assert (whole == pieces).all()
    assert (whole != split_of(frame, SplitPlan("stratified", 4))).any()
    assert abs((whole == TRAIN).mean() - 0.6) < 0.02 and abs((whole == TEST).mean() - 0.2) < 0.02
