"""Calibrating fraud probabilities on held-out validation rows, and measuring calibration.

The correction is Platt scaling of the log-odds: ``p = sigmoid(slope * logit(q) + intercept)``
for the model's probability ``q``. It is monotone, so ranking (AUPRC) and contributions in
margin space are untouched, and it is two numbers in the manifest. Whether it is applied is
decided on evidence: cross-validated log-loss on the validation split, against leaving the
probabilities as they are (early stopping chose its round on the same rows, so a gain must
show on folds the scaling was not fitted on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Probability edges of the reliability table: log-spaced at the low end, where nearly every
# row of a rare-fraud dataset falls, so the table says something about them.
BIN_EDGES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
_FOLDS = 5
_EPSILON = 1e-7


@dataclass(frozen=True)
class Calibration:
    """``method`` is "platt" or "none"; ``none`` is the identity (slope 1, intercept 0)."""

    method: str = "none"
    slope: float = 1.0
    intercept: float = 0.0

    def apply_to_log_odds(self, log_odds: np.ndarray) -> np.ndarray:
        return self.slope * log_odds + self.intercept

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        return sigmoid(self.apply_to_log_odds(logit(probabilities)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict | None) -> Calibration:
        """Bundles written before calibration existed have none: the identity."""
        if not document:
            return cls()
        return cls(str(document.get("method", "none")), float(document.get("slope", 1.0)),
                   float(document.get("intercept", 0.0)))


def sigmoid(log_odds: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(log_odds, dtype=np.float64)))


def logit(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(clipped / (1 - clipped))


def log_loss(labels: np.ndarray, probabilities: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean log-loss; ``weights`` count how many rows each entry stands for."""
    labels = np.asarray(labels, dtype=np.float64)
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return float(-np.average(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped), weights=weights))


def brier(labels: np.ndarray, probabilities: np.ndarray, weights: np.ndarray | None = None) -> float:
    return float(np.average((np.asarray(probabilities, dtype=np.float64) - np.asarray(labels)) ** 2,
                            weights=weights))


def _fit_platt(log_odds: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> Calibration:
    # Effectively unregularised: two parameters on thousands of rows need no shrinkage.
    # Imported here: bundles load this module to apply a calibration, and `fraud score`
    # keeps scikit-learn (with pandas and SciPy) out of its start-up.
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(log_odds.reshape(-1, 1), labels, sample_weight=weights)
    return Calibration("platt", float(fitted.coef_[0, 0]), float(fitted.intercept_[0]))


def _class_totals(labels: np.ndarray, weights: np.ndarray | None) -> tuple[float, float]:
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    frauds = float(weights[labels == 1].sum())
    return frauds, float(weights.sum()) - frauds


def _calibration_folds(labels: np.ndarray, weights: np.ndarray | None, folds: np.ndarray | None,
                       seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fitting, held-out) entry indices of each fold: stratified at random for rows, the
    given folds for binned rows; no folds when a class is too rare to fill them."""
    if folds is not None:
        splits = [(np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)) for fold in np.unique(folds)]
        fits_both = all(min(_class_totals(labels[fit], None if weights is None else weights[fit])) > 0
                        for fit, _ in splits)
        return splits if len(splits) >= 2 and fits_both else []
    frauds, genuine = _class_totals(labels, weights)
    count = int(min(_FOLDS, frauds, genuine))
    if count < 2:
        return []
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=count, shuffle=True, random_state=seed).split(labels, labels))


def fit_calibration(labels: np.ndarray, probabilities: np.ndarray, *, seed: int = 0,
                    weights: np.ndarray | None = None, folds: np.ndarray | None = None) -> tuple[Calibration, dict]:
    """The calibration with the lower cross-validated log-loss on these held-out rows, and the
    evidence: each candidate's mean fold log-loss. ``weights`` and ``folds`` describe binned
    rows (:mod:`fraud_assets.core.model.scored_rows`)."""
    labels = np.asarray(labels).astype(np.int64)
    if weights is not None and folds is None:
        raise ValueError("binned rows (weights) need their calibration folds: a bin cannot be split into folds")
    log_odds = logit(probabilities)
    splits = _calibration_folds(labels, weights, folds, seed)
    if not splits:
        return Calibration(), {"none": log_loss(labels, probabilities, weights)}

    def part(values, rows):
        return None if values is None else values[rows]

    losses = {"none": [], "platt": []}
    for fit_rows, held_rows in splits:
        platt = _fit_platt(log_odds[fit_rows], labels[fit_rows], part(weights, fit_rows))
        held_weights = part(weights, held_rows)
        losses["platt"].append(log_loss(labels[held_rows], sigmoid(platt.apply_to_log_odds(log_odds[held_rows])),
                                        held_weights))
        losses["none"].append(log_loss(labels[held_rows], sigmoid(log_odds[held_rows]), held_weights))
    evidence = {name: round(float(np.mean(values)), 6) for name, values in losses.items()}
    chosen = _fit_platt(log_odds, labels, weights) if evidence["platt"] < evidence["none"] else Calibration()
    return chosen, evidence


def reliability_table(labels: np.ndarray, probabilities: np.ndarray,
                      weights: np.ndarray | None = None) -> list[dict]:
    """Mean predicted against observed fraud rate in each non-empty probability bin."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    bins = np.clip(np.searchsorted(BIN_EDGES, probabilities, side="right") - 1, 0, len(BIN_EDGES) - 2)
    table = []
    for index in np.unique(bins):
        members = (bins == index) & (weights > 0)
        rows = weights[members].sum()
        if not rows:
            continue
        table.append({
            "low": BIN_EDGES[index], "high": BIN_EDGES[index + 1], "rows": int(round(rows)),
            "frauds": int(round(weights[members] @ labels[members])),
            "mean_predicted": round(float(weights[members] @ probabilities[members] / rows), 6),
            "observed_rate": round(float(weights[members] @ labels[members] / rows), 6),
        })
    return table


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray,
                               weights: np.ndarray | None = None) -> float:
    """Row-weighted mean gap between predicted and observed fraud rate over the table's bins."""
    table = reliability_table(labels, probabilities, weights)
    rows = sum(entry["rows"] for entry in table) or 1
    return float(sum(entry["rows"] * abs(entry["mean_predicted"] - entry["observed_rate"])
                     for entry in table) / rows)


def calibration_report(calibration: Calibration, cross_validated_losses: dict, labels: np.ndarray,
                       uncalibrated: np.ndarray, calibrated: np.ndarray,
                       weights: np.ndarray | None = None) -> dict:
    """The manifest's account of calibration: the method, why it was chosen (each candidate's
    mean fold log-loss on validation), test figures before it, and the test reliability table."""
    return {
        **calibration.to_dict(),
        "cross_validated_log_loss": cross_validated_losses,
        "test_before": {"log_loss": log_loss(labels, uncalibrated, weights),
                        "calibration_error": expected_calibration_error(labels, uncalibrated, weights)},
        "reliability_test": reliability_table(labels, calibrated, weights),
    }
