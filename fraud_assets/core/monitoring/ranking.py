"""Average precision that can be recomputed cheaply under resampling weights.

Equal to scikit-learn's ``average_precision_score`` (tied scores form one threshold), but the
sort is done once per model, so a bootstrap of a thousand weightings costs a thousand
cumulative sums instead of a thousand sorts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankedScores:
    """A model's scores sorted once: descending order and where each tie block ends."""

    order: np.ndarray
    block_end: np.ndarray  # for each sorted position, the last position of its tie block

    @classmethod
    def of(cls, scores: np.ndarray) -> RankedScores:
        scores = np.asarray(scores, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        ordered = scores[order]
        # Positions where the next score differs close a block; the last always does.
        closes = np.append(ordered[1:] != ordered[:-1], True)
        ends = np.flatnonzero(closes)
        block_end = ends[np.searchsorted(ends, np.arange(len(ordered)))]
        return cls(order=order, block_end=block_end)

    def average_precision(self, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
        y = np.asarray(labels, dtype=np.float64)[self.order]
        w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)[self.order]
        positives = w * y
        total = positives.sum()
        if total <= 0:
            return float("nan")
        true_positives = np.cumsum(positives)[self.block_end]
        flagged = np.cumsum(w)[self.block_end]
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(flagged > 0, true_positives / flagged, 0.0)
        return float((positives * precision).sum() / total)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    return RankedScores.of(scores).average_precision(labels)
