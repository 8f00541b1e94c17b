"""Choosing the decision threshold on validation scores.

At 0.17 % prevalence a fixed 0.5 threshold is arbitrary; the threshold is a business choice
(how many alerts to review, what a missed fraud costs), so three policies are offered, plus
``fixed`` for a threshold chosen elsewhere.

The alert budget is a share of volume: ``alerts_per_day`` at the expected daily volume
(``rows_per_day``, measured on the training data) is ``alerts_per_day / rows_per_day`` alerts
per transaction, applied to the validation rows. Prorating by the validation split's time
span instead would tie the budget to which hours the split happens to cover, though volume
follows the day/night cycle: a night-heavy split would get a day's worth of alerts for a
fraction of a day's transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

ThresholdStrategy = Literal["max_f1", "min_cost", "alert_budget", "fixed"]
STRATEGIES: tuple[str, ...] = get_args(ThresholdStrategy)
# The fields each strategy reads, which is what a manifest records of the policy.
_PARAMETERS = {
    "max_f1": (),
    "min_cost": ("missed_fraud_cost", "false_alert_cost"),
    "alert_budget": ("alerts_per_day",),
    "fixed": ("threshold",),
}


def strategy_parameters(strategy: str) -> tuple[str, ...]:
    """The policy fields ``strategy`` reads; the others do nothing under it."""
    return _PARAMETERS[strategy]


# The threshold that flags no row: above every probability, also once rounded to float32, as
# scoring compares it with float32 probabilities (just above the top score would round down
# onto it, and binned scores do not know how far above their bin's floor the top rows sit).
FLAG_NOTHING = float(np.nextafter(np.float32(1.0), np.float32(2.0)))


@dataclass(frozen=True)
class ThresholdPolicy:
    strategy: ThresholdStrategy = "max_f1"
    missed_fraud_cost: float = 100.0
    false_alert_cost: float = 1.0
    alerts_per_day: float = 50.0
    threshold: float = 0.5  # the fixed strategy's

    def __post_init__(self) -> None:
        # Checked here, not after training: a typo in a run's config fails in a second.
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown threshold strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}"
            )

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, **{name: getattr(self, name) for name in _PARAMETERS[self.strategy]}}


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    strategy: str
    expected_alerts: int


def _cumulative_counts(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray):
    """True/false positives when flagging every distinct score at or above each cut."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_labels = labels[order].astype(np.int64)
    sorted_weights = weights[order]
    true_pos = np.cumsum(sorted_labels * sorted_weights)
    false_pos = np.cumsum((1 - sorted_labels) * sorted_weights)
    # Only cut after the last of a run of tied scores: a threshold cannot split ties.
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    return sorted_scores[last_of_tie], true_pos[last_of_tie], false_pos[last_of_tie]


def choose_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    policy: ThresholdPolicy = ThresholdPolicy(),
    *,
    rows_per_day: float | None = None,
    weights: np.ndarray | None = None,
) -> ThresholdChoice:
    """Pick the threshold: rows with ``score >= threshold`` are flagged as fraud.

    ``rows_per_day``: the expected daily volume, for the alert budget; None takes the scores
    as one day's transactions. ``weights``: how many rows each entry stands for (binned
    scores, :mod:`fraud_assets.core.model.scored_rows`); None, one each.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if len(labels) == 0:
        raise ValueError("cannot choose a threshold on an empty validation set")
    # Integer counts: rows, and rows stood for by bins, are whole.
    weights = np.ones(len(labels), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    if policy.strategy == "fixed":
        return ThresholdChoice(policy.threshold, "fixed", int(weights[scores >= policy.threshold].sum()))
    cut_scores, true_pos, false_pos = _cumulative_counts(labels, scores, weights)
    positives = int(weights[labels == 1].sum())
    flagged = true_pos + false_pos

    if policy.strategy == "max_f1":
        if positives == 0:
            raise ValueError("validation split has no frauds; max_f1 is undefined")
        f1 = 2 * true_pos / (flagged + positives)
        best = int(np.argmax(f1))
    elif policy.strategy == "min_cost":
        false_neg = positives - true_pos
        cost = policy.missed_fraud_cost * false_neg + policy.false_alert_cost * false_pos
        # Flagging nothing is also an option; it wins if every cut costs more.
        best = int(np.argmin(cost))
        if policy.missed_fraud_cost * positives < cost[best]:
            return ThresholdChoice(FLAG_NOTHING, "min_cost", 0)
    else:  # alert_budget
        budget = policy.alerts_per_day * alert_rate_days(int(weights.sum()), rows_per_day)
        within = np.flatnonzero(flagged <= budget)
        if len(within) == 0:
            return ThresholdChoice(FLAG_NOTHING, "alert_budget", 0)
        best = int(within[-1])
    return ThresholdChoice(float(cut_scores[best]), policy.strategy, int(flagged[best]))


def alert_rate_days(rows: int, rows_per_day: float | None) -> float:
    """How many days of expected volume ``rows`` transactions are."""
    if rows_per_day is None:
        return 1.0
    if not rows_per_day > 0:
        raise ValueError(f"rows_per_day must be positive, got {rows_per_day}")
    return rows / rows_per_day
