"""Model quality figures, led by average precision (AUPRC) as is usual for rare fraud."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def classification_report(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """AUPRC, ROC-AUC and the confusion matrix at ``threshold`` (flag when score >= it)."""
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    both_classes = 0 < labels.sum() < len(labels)
    predicted = scores >= threshold
    tp = int(np.sum(predicted & (labels == 1)))
    fp = int(np.sum(predicted & (labels == 0)))
    fn = int(np.sum(~predicted & (labels == 1)))
    tn = int(np.sum(~predicted & (labels == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "rows": int(len(labels)),
        "frauds": int(labels.sum()),
        "auprc": float(average_precision_score(labels, scores)) if both_classes else float("nan"),
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def precision_recall_points(
    labels: np.ndarray, scores: np.ndarray, max_points: int = 200
) -> list[tuple[float, float]]:
    """(recall, precision) pairs thinned to ``max_points`` so they fit in run metadata."""
    precision, recall, _ = precision_recall_curve(labels, scores)
    if len(recall) > max_points:
        keep = np.unique(np.linspace(0, len(recall) - 1, max_points).round().astype(int))
        precision, recall = precision[keep], recall[keep]
    return [(round(float(r), 4), round(float(p), 4)) for r, p in zip(recall, precision, strict=True)]
