"""Model quality figures, led by average precision (AUPRC) as is usual for rare fraud."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from fraud_assets.core.model.calibration import brier, expected_calibration_error, log_loss


def classification_report(labels: np.ndarray, scores: np.ndarray, threshold: float,
                          weights: np.ndarray | None = None) -> dict:
    """AUPRC, ROC-AUC and the confusion matrix at ``threshold`` (flag when score >= it).
    ``weights``: how many rows each entry stands for (binned scores); None, one each."""
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    counts = np.ones(len(labels), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    rows, frauds = int(counts.sum()), int(counts[labels == 1].sum())
    both_classes = 0 < frauds < rows
    predicted = scores >= threshold
    tp = int(counts[predicted & (labels == 1)].sum())
    fp = int(counts[predicted & (labels == 0)].sum())
    fn = int(counts[~predicted & (labels == 1)].sum())
    tn = int(counts[~predicted & (labels == 0)].sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "rows": rows,
        "frauds": frauds,
        "auprc": float(average_precision_score(labels, scores, sample_weight=weights)) if both_classes else float("nan"),
        "roc_auc": float(roc_auc_score(labels, scores, sample_weight=weights)) if both_classes else float("nan"),
        # How far the probabilities are from the observed rates, not only their ranking.
        "log_loss": log_loss(labels, scores, weights) if rows else float("nan"),
        "brier": brier(labels, scores, weights) if rows else float("nan"),
        "calibration_error": expected_calibration_error(labels, scores, weights) if rows else float("nan"),
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def step_area(points: Sequence[Sequence[float]]) -> float:
    """Area under (recall, precision) points taken step-wise, as average precision takes it:
    each rise in recall is weighted by the precision where it happens. Among points of equal
    recall, only the first (the highest precision, by this module's ordering) counts."""
    area, previous = 0.0, 0.0
    for recall, precision in points:
        if recall > previous:
            area += (recall - previous) * precision
            previous = recall
    return area


def precision_recall_points(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    *,
    max_points: int = 200,
    tolerance: float = 0.005,
    weights: np.ndarray | None = None,
) -> list[tuple[float, float]]:
    """(recall, precision) pairs by rising recall, few enough for run metadata, whose step-wise
    area (:func:`step_area`) stays within ``tolerance`` of the average precision.

    Only the corners count for the area: the first point at each new recall (one per fraud at
    most). Thinning keeps a corner once recall or precision has moved by a set step since the
    last kept one, so the steep top of the curve, where precision changes fast with few frauds,
    keeps its points; the step halves until the area is close enough or the points run out.
    With ``threshold``, the point that flags ``score >= threshold`` is kept as well.
    ``weights``: how many rows each entry stands for (binned scores).
    """
    precision, recall, cuts = precision_recall_curve(labels, scores, sample_weight=weights)
    # sklearn orders by rising threshold and ends at (recall 0, precision 1), which has no
    # threshold of its own; reversed, the curve starts there and recall never falls.
    precision, recall, cuts = precision[::-1], recall[::-1], np.r_[np.inf, cuts[::-1]]
    corners = np.r_[0, np.flatnonzero(np.diff(recall) > 0) + 1]
    target = float(np.sum(np.diff(recall) * precision[1:]))
    extra = _threshold_index(cuts, threshold) if threshold is not None else None
    step, kept = 0.02, corners
    while True:
        kept = _thin(corners, recall, precision, step)
        if extra is not None:
            kept = np.union1d(kept, [extra])
        points = [(round(float(recall[i]), 4), round(float(precision[i]), 4)) for i in kept]
        if abs(step_area(points) - target) <= tolerance or len(kept) >= len(corners):
            return points
        if len(_thin(corners, recall, precision, step / 2)) > max_points:
            return points
        step /= 2


def _thin(corners: np.ndarray, recall: np.ndarray, precision: np.ndarray, step: float) -> np.ndarray:
    kept = [corners[0]]
    for index in corners[1:-1]:
        last = kept[-1]
        if recall[index] - recall[last] >= step or abs(precision[index] - precision[last]) >= step:
            kept.append(index)
    if corners[-1] != kept[-1]:
        kept.append(corners[-1])
    return np.asarray(kept)


def _threshold_index(descending_cuts: np.ndarray, threshold: float) -> int:
    """The last curve point (lowest cut) still at or above ``threshold``: what it flags."""
    at_or_above = np.flatnonzero(descending_cuts >= threshold)
    return int(at_or_above[-1]) if len(at_or_above) else 0
