"""Champion and challenger: should the model scored in shadow replace the one serving?

Both models scored the same transactions, so they are compared on those shared rows once
their labels are mature. The test is a paired Poisson bootstrap: each resample weights every
row by a Poisson(1) draw, the same weights for both models, and recomputes both average
precisions. The challenger is promoted when

* it had enough evidence: at least ``min_days`` mature days and ``min_frauds`` frauds;
* its realised AUPRC beats production's by at least ``margin``;
* the one-sided bootstrap p-value of "not better" (share of resamples where its AUPRC is not
  above production's) is at most ``alpha``;
* its realised cost at its own threshold is not above production's at production's.

With enough evidence and any of the last three failing, it is retired. Without enough
evidence the decision waits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fraud_assets.core.monitoring.ranking import RankedScores

PROMOTE, RETIRE, WAIT = "promote", "retire", "wait"


@dataclass(frozen=True)
class PromotionPolicy:
    min_days: int = 7
    min_frauds: int = 100
    margin: float = 0.005
    alpha: float = 0.05
    resamples: int = 500
    missed_fraud_cost: float = 100.0
    false_alert_cost: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class SideBySide:
    """Shared rows of mature days: the label and each model's score and threshold."""

    days: np.ndarray  # transaction day of each row
    labels: np.ndarray
    production_scores: np.ndarray
    challenger_scores: np.ndarray
    production_threshold: float
    challenger_threshold: float


@dataclass(frozen=True)
class Decision:
    outcome: str
    reason: str
    days: int
    rows: int
    frauds: int
    production_auprc: float | None = None
    challenger_auprc: float | None = None
    auprc_difference: float | None = None
    difference_interval_90: tuple[float, float] | None = None
    p_value_not_better: float | None = None
    production_cost: float | None = None
    challenger_cost: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _cost(labels: np.ndarray, scores: np.ndarray, threshold: float, policy: PromotionPolicy) -> float:
    flagged = scores >= threshold
    missed = int(np.count_nonzero(~flagged & (labels == 1)))
    false_alerts = int(np.count_nonzero(flagged & (labels == 0)))
    return float(missed * policy.missed_fraud_cost + false_alerts * policy.false_alert_cost)


def decide(evidence: SideBySide, policy: PromotionPolicy) -> Decision:
    labels = np.asarray(evidence.labels, dtype=np.int8)
    days = len(np.unique(evidence.days))
    frauds = int(labels.sum())
    base = {"days": days, "rows": int(len(labels)), "frauds": frauds}
    if days < policy.min_days or frauds < policy.min_frauds:
        return Decision(
            WAIT,
            f"not enough evidence yet: {days} of {policy.min_days} mature days, "
            f"{frauds} of {policy.min_frauds} frauds scored side by side",
            **base,
        )
    production = RankedScores.of(evidence.production_scores)
    challenger = RankedScores.of(evidence.challenger_scores)
    production_auprc = production.average_precision(labels)
    challenger_auprc = challenger.average_precision(labels)
    difference = challenger_auprc - production_auprc

    rng = np.random.default_rng(policy.seed)
    differences = np.empty(policy.resamples)
    for index in range(policy.resamples):
        weights = rng.poisson(1.0, size=len(labels))
        differences[index] = challenger.average_precision(labels, weights) - production.average_precision(
            labels, weights
        )
    differences = differences[~np.isnan(differences)]
    p_value = float(np.mean(differences <= 0)) if len(differences) else 1.0
    low, high = (float(q) for q in np.quantile(differences, [0.05, 0.95])) if len(differences) else (0.0, 0.0)
    production_cost = _cost(labels, evidence.production_scores, evidence.production_threshold, policy)
    challenger_cost = _cost(labels, evidence.challenger_scores, evidence.challenger_threshold, policy)
    figures = {
        **base,
        "production_auprc": round(production_auprc, 6),
        "challenger_auprc": round(challenger_auprc, 6),
        "auprc_difference": round(difference, 6),
        "difference_interval_90": (round(low, 6), round(high, 6)),
        "p_value_not_better": round(p_value, 4),
        "production_cost": production_cost,
        "challenger_cost": challenger_cost,
    }
    failures = []
    if difference < policy.margin:
        failures.append(f"AUPRC gain {difference:+.4f} below the margin {policy.margin:.4f}")
    if p_value > policy.alpha:
        failures.append(f"bootstrap p-value {p_value:.3f} above {policy.alpha}")
    if challenger_cost > production_cost:
        failures.append(f"cost {challenger_cost:,.0f} above production's {production_cost:,.0f}")
    summary = (
        f"realised AUPRC {challenger_auprc:.4f} vs {production_auprc:.4f} over {days} mature days, "
        f"{frauds} frauds (paired bootstrap p={p_value:.3f}, 90% interval of the gain "
        f"[{low:+.4f}, {high:+.4f}]); cost {challenger_cost:,.0f} vs {production_cost:,.0f}"
    )
    if failures:
        return Decision(RETIRE, f"{summary}; retired: {'; '.join(failures)}", **figures)
    return Decision(PROMOTE, f"{summary}; promoted", **figures)
