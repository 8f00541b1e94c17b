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


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    labels = np.asarray(labels, dtype=np.float64)
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - np.asarray(labels)) ** 2))


def _fit_platt(log_odds: np.ndarray, labels: np.ndarray) -> Calibration:
    # Effectively unregularised: two parameters on thousands of rows need no shrinkage.
    # Imported here: bundles load this module to apply a calibration, and `fraud score`
    # keeps scikit-learn (with pandas and SciPy) out of its start-up.
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(log_odds.reshape(-1, 1), labels)
    return Calibration("platt", float(fitted.coef_[0, 0]), float(fitted.intercept_[0]))


def fit_calibration(labels: np.ndarray, probabilities: np.ndarray, *, seed: int = 0) -> tuple[Calibration, dict]:
    """The calibration with the lower cross-validated log-loss on these held-out rows, and the
    evidence: each candidate's mean fold log-loss."""
    labels = np.asarray(labels).astype(np.int64)
    log_odds = logit(probabilities)
    frauds = int(labels.sum())
    folds = min(_FOLDS, frauds, len(labels) - frauds)
    if folds < 2:
        return Calibration(), {"none": log_loss(labels, probabilities)}
    losses = {"none": [], "platt": []}
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in splitter.split(log_odds, labels):
        platt = _fit_platt(log_odds[fit_rows], labels[fit_rows])
        losses["platt"].append(log_loss(labels[held_rows], sigmoid(platt.apply_to_log_odds(log_odds[held_rows]))))
        losses["none"].append(log_loss(labels[held_rows], sigmoid(log_odds[held_rows])))
    evidence = {name: round(float(np.mean(values)), 6) for name, values in losses.items()}
    chosen = _fit_platt(log_odds, labels) if evidence["platt"] < evidence["none"] else Calibration()
    return chosen, evidence


def reliability_table(labels: np.ndarray, probabilities: np.ndarray) -> list[dict]:
    """Mean predicted against observed fraud rate in each non-empty probability bin."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    bins = np.clip(np.searchsorted(BIN_EDGES, probabilities, side="right") - 1, 0, len(BIN_EDGES) - 2)
    table = []
    for index in np.unique(bins):
        members = bins == index
        table.append({
            "low": BIN_EDGES[index], "high": BIN_EDGES[index + 1], "rows": int(members.sum()),
            "frauds": int(labels[members].sum()),
            "mean_predicted": round(float(probabilities[members].mean()), 6),
            "observed_rate": round(float(labels[members].mean()), 6),
        })
    return table


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Row-weighted mean gap between predicted and observed fraud rate over the table's bins."""
    table = reliability_table(labels, probabilities)
    rows = sum(entry["rows"] for entry in table) or 1
    return float(sum(entry["rows"] * abs(entry["mean_predicted"] - entry["observed_rate"])
                     for entry in table) / rows)


def calibration_report(calibration: Calibration, cross_validated_losses: dict, labels: np.ndarray,
                       uncalibrated: np.ndarray, calibrated: np.ndarray) -> dict:
    """The manifest's account of calibration: the method, why it was chosen (each candidate's
    mean fold log-loss on validation), test figures before it, and the test reliability table."""
    return {
        **calibration.to_dict(),
        "cross_validated_log_loss": cross_validated_losses,
        "test_before": {"log_loss": log_loss(labels, uncalibrated),
                        "calibration_error": expected_calibration_error(labels, uncalibrated)},
        "reliability_test": reliability_table(labels, calibrated),
    }
