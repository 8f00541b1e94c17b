"""Realised figures against a plain recomputation; the promotion decision in both directions."""

import datetime as dt

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_score, recall_score

from fraud_assets.core.monitoring.challenger import PROMOTE, RETIRE, WAIT, PromotionPolicy, SideBySide, decide
from fraud_assets.core.monitoring.performance import is_mature, known_share_at_age, realized_figures
from fraud_assets.core.monitoring.ranking import RankedScores, average_precision


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_equals_scikit_learn_with_ties_and_weights(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(20_000) < 0.01).astype(int)
    scores = np.round(rng.random(20_000) * 0.6 + labels * 0.4, 2)  # coarse: many ties
    weights = rng.poisson(1.0, len(labels))
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert RankedScores.of(scores).average_precision(labels, weights) == pytest.approx(
        average_precision_score(labels, scores, sample_weight=weights), abs=1e-12
    )


def test_realized_figures_equal_a_plain_recomputation():
    rng = np.random.default_rng(5)
    labels = (rng.random(5_000) < 0.02).astype(np.int8)
    scores = np.clip(rng.normal(0.1 + 0.5 * labels, 0.2), 0, 1)
    figures = realized_figures(
        date="2025-03-01", role="production", model_version="v1", threshold=0.4, scores=scores,
        labels=labels, mature=True, missed_fraud_cost=100.0, false_alert_cost=2.0,
    )
    flagged = scores >= 0.4
    assert figures.auprc == pytest.approx(average_precision_score(labels, scores))
    assert figures.precision == pytest.approx(precision_score(labels, flagged))
    assert figures.recall == pytest.approx(recall_score(labels, flagged))
    assert figures.alerts == flagged.sum() and figures.frauds == labels.sum()
    assert figures.caught + figures.missed == figures.frauds
    assert figures.cost == pytest.approx(100.0 * figures.missed + 2.0 * (flagged & (labels == 0)).sum())
    assert figures.known_fraud_share == 1.0


def test_a_day_without_frauds_has_no_auprc_or_recall():
    figures = realized_figures(
        date="2025-03-01", role="challenger", model_version="v2", threshold=0.5,
        scores=np.array([0.1, 0.7]), labels=np.array([0, 0]), mature=False,
        missed_fraud_cost=100.0, false_alert_cost=1.0, known_fraud_share=0.4,
    )
    document = figures.to_dict()
    assert document["auprc"] is None and document["recall"] is None
    assert document["precision"] == 0.0 and document["known_fraud_share"] == 0.4


def test_maturity_and_known_share():
    today = dt.date(2025, 3, 31)
    assert is_mature("2025-03-01", today, 30) and not is_mature("2025-03-02", today, 30)
    delays = np.array([0, 1, 1, 2, 5, 10, 20, 29] * 5)
    assert known_share_at_age(delays, 2) == pytest.approx(0.5)
    assert known_share_at_age(delays[:10], 2) is None


def _evidence(seed: int, challenger_skill: float, production_skill: float, days: int = 10, rows: int = 4_000):
    rng = np.random.default_rng(seed)
    labels = (rng.random(days * rows) < 0.01).astype(np.int8)
    noise_p, noise_c = rng.normal(size=(2, len(labels)))
    return SideBySide(
        days=np.repeat([f"2025-03-{d + 1:02d}" for d in range(days)], rows),
        labels=labels,
        production_scores=1 / (1 + np.exp(-(production_skill * labels + noise_p - 4))),
        challenger_scores=1 / (1 + np.exp(-(challenger_skill * labels + noise_c - 4))),
        production_threshold=0.3,
        challenger_threshold=0.3,
    )


POLICY = PromotionPolicy(min_days=7, min_frauds=100, resamples=300)


def test_a_truly_better_challenger_is_promoted():
    decision = decide(_evidence(1, challenger_skill=4.0, production_skill=2.5), POLICY)
    assert decision.outcome == PROMOTE, decision.reason
    assert decision.challenger_auprc > decision.production_auprc + POLICY.margin
    assert decision.p_value_not_better <= POLICY.alpha


@pytest.mark.parametrize(("challenger", "production"), [(2.5, 2.5), (2.0, 3.0)])
def test_an_equal_or_worse_challenger_is_retired(challenger, production):
    decision = decide(_evidence(2, challenger_skill=challenger, production_skill=production), POLICY)
    assert decision.outcome == RETIRE, decision.reason
    assert "retired" in decision.reason


def test_the_decision_waits_for_enough_mature_days_and_frauds():
    evidence = _evidence(3, challenger_skill=5.0, production_skill=1.0, days=3)
    decision = decide(evidence, POLICY)
    assert decision.outcome == WAIT and "3 of 7 mature days" in decision.reason


def test_the_bootstrap_is_reproducible_with_its_seed():
    evidence = _evidence(4, challenger_skill=3.0, production_skill=2.8)
    assert decide(evidence, POLICY) == decide(evidence, POLICY)
