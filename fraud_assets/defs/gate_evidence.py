"""What the quality gate judges: the test split scored by the candidate and by the model that
serves, in this process, or by the Dask workers when a scheduler is configured (the split's
rows never reach this process, only counts of rows per label and score bin)."""

from __future__ import annotations

import pandas as pd

from fraud_assets.core.data.splits import DAY_COLUMN
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.gate import HeldOutScores, score_test_split
from fraud_assets.defs.io_managers import StoredTable
from fraud_assets.defs.resources import DaskCluster


def scored_test_split(
    test_split: StoredTable, candidate: FraudModel, production: FraudModel | None, dask: DaskCluster
) -> tuple[HeldOutScores, str | None]:
    """The gate's evidence, and the latest transaction day of the test split (the latest day
    the candidate learnt from; None when it trained on the base file alone)."""
    if dask.configured:
        from fraud_assets.core.cluster.datasets import score_split_on_cluster

        with dask.client() as client:
            return score_split_on_cluster(client, test_split.tables(), candidate, production)
    frame = test_split.load()
    return score_test_split(candidate, production, frame), last_labelled_day(frame)


def last_labelled_day(test_split: pd.DataFrame) -> str | None:
    days = test_split.get(DAY_COLUMN)
    if days is None:
        return None
    days = [d for d in days.astype(str).unique() if d]
    return max(days) if days else None
