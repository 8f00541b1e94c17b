"""Held-out rows as the threshold, the calibration, the metrics and the gate read them: each
row's label and probability, or, when the rows are too many to bring into one process, counts
of rows per label and score bin standing for them.

A bin is 1/500 of a unit of log-odds wide over the whole range a clipped probability can take,
and stands for its rows at its lower edge. A threshold chosen among the edges then flags exactly
the rows the counts say it flags, and a probability moves by at most 0.2 % of itself, so
log-loss, Brier score, average precision and the reliability table stay within rounding of
the same figures computed row by row, while what crosses the network and what this process
holds no longer grows with the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraud_assets.core.model.calibration import logit, sigmoid

BINS_PER_LOG_ODDS = 500
# logit(1e-7) is -16.12: the clipped probabilities fall inside, with a little room.
LOG_ODDS_LIMIT = 16.2
SCORE_BINS = int(2 * LOG_ODDS_LIMIT * BINS_PER_LOG_ODDS)
# Calibration is chosen by cross-validation on the validation rows; binned rows keep their fold.
CALIBRATION_FOLDS = 5
# One sparse count: (group, fold, label, bin, rows).
COUNT_COLUMNS = 5


@dataclass(frozen=True)
class ScoredRows:
    """Labels and probabilities of held-out rows. With ``weights``, each entry stands for that
    many rows (whole counts); with ``folds``, each entry's calibration fold is fixed (binned
    rows cannot be split again); with ``ceilings``, every row an entry stands for lies below
    its ceiling (the upper edge of its bin)."""

    labels: np.ndarray
    scores: np.ndarray
    weights: np.ndarray | None = None
    folds: np.ndarray | None = None
    ceilings: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(len(self.labels) if self.weights is None else self.weights.sum())

    @property
    def frauds(self) -> int:
        labels = np.asarray(self.labels)
        return int(labels.sum() if self.weights is None else self.weights[labels == 1].sum())

    def mapped(self, monotone: Callable[[np.ndarray], np.ndarray]) -> ScoredRows:
        """The same rows with ``monotone`` (a calibration) applied to their scores."""
        return ScoredRows(self.labels, monotone(self.scores), self.weights, self.folds,
                          None if self.ceilings is None else monotone(self.ceilings))

    def sample_scores(self, size: int, seed: int) -> np.ndarray:
        """Scores of up to ``size`` rows drawn as the rows are distributed (all of them when
        they are unweighted), e.g. for the drift reference's quantiles.

        A drawn binned row takes its bin's ceiling: the reference's distribution function then
        matches, at every point it is read at (bin edges), that of live scores from the same
        model, ties included. At the bin's floor it would be a whole bin ahead of them."""
        if self.weights is None:
            return np.asarray(self.scores)
        total = self.weights.sum()
        if total == 0:
            return np.empty(0)
        rng = np.random.default_rng(seed)
        drawn = rng.choice(len(self.labels), size=min(size, int(total)), p=self.weights / total)
        return np.asarray(self.scores if self.ceilings is None else self.ceilings)[drawn]


def score_bins(probabilities: np.ndarray) -> np.ndarray:
    log_odds = np.clip(logit(probabilities), -LOG_ODDS_LIMIT, LOG_ODDS_LIMIT - 1 / BINS_PER_LOG_ODDS)
    return np.floor((log_odds + LOG_ODDS_LIMIT) * BINS_PER_LOG_ODDS).astype(np.int64)


def bin_probabilities(bins: np.ndarray) -> np.ndarray:
    """The probability a bin stands for: its lower edge, at or below every row it counts
    (probabilities below 1e-7 count at 1e-7, the clip log-loss applies)."""
    edges = sigmoid(np.asarray(bins, dtype=np.float64) / BINS_PER_LOG_ODDS - LOG_ODDS_LIMIT)
    # A little below the edge, so a row whose probability sits on it, rounded either way on
    # its way through the log-odds, is never below it.
    return edges * (1 - 1e-9)


def content_folds(rows: pd.DataFrame, folds: int = CALIBRATION_FOLDS) -> np.ndarray:
    """A calibration fold for each row from its content alone, so the same rows get the same
    folds however the data is partitioned and on whichever worker."""
    if rows.empty:
        return np.empty(0, dtype=np.int64)
    hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    return (hashed % np.uint64(folds)).astype(np.int64)


def count_scores(labels: np.ndarray, probabilities: np.ndarray, *, group: int = 0,
                 folds: np.ndarray | None = None) -> np.ndarray:
    """Sparse counts of these rows: one (group, fold, label, bin, rows) line per non-empty
    cell, small to send whatever the rows' number."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return np.empty((0, COUNT_COLUMNS), dtype=np.int64)
    folds = np.zeros(len(labels), dtype=np.int64) if folds is None else np.asarray(folds, dtype=np.int64)
    cells = (folds * 2 + labels) * SCORE_BINS + score_bins(probabilities)
    unique, rows = np.unique(cells, return_counts=True)
    fold_label, bins = np.divmod(unique, SCORE_BINS)
    fold, label = np.divmod(fold_label, 2)
    return np.column_stack([np.full(len(unique), group), fold, label, bins, rows]).astype(np.int64)


class ScoreCounts:
    """Rows per (group, fold, label, score bin), added up from any number of sparse counts:
    a few megabytes however many rows they describe."""

    def __init__(self, groups: int, folds: int = 1):
        self.counts = np.zeros((groups, folds, 2, SCORE_BINS), dtype=np.int64)

    def add(self, sparse: np.ndarray) -> None:
        sparse = np.asarray(sparse, dtype=np.int64).reshape(-1, COUNT_COLUMNS)
        group, fold, label, bins, rows = sparse.T
        np.add.at(self.counts, (group, fold, label, bins), rows)

    def scored_rows(self, group: int = 0, *, folded: bool | None = None) -> ScoredRows:
        """The group's rows as weighted entries; ``folded`` (default: whether the counts keep
        folds) says whether its calibration folds are kept."""
        folds, labels, bins = np.nonzero(self.counts[group])
        folded = self.counts.shape[1] > 1 if folded is None else folded
        return ScoredRows(
            labels=labels.astype(np.int8),
            scores=bin_probabilities(bins),
            weights=self.counts[group][folds, labels, bins],
            folds=folds if folded else None,
            ceilings=bin_probabilities(bins + 1),
        )
