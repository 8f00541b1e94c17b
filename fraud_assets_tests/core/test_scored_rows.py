"""Binned held-out scores (what Dask workers send back) give the figures the rows give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_assets.core.data import profile
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.calibration import fit_calibration, logit, sigmoid
from fraud_assets.core.model.evaluation import classification_report, precision_recall_points, step_area
from fraud_assets.core.model.gate import HeldOutScores, evaluate_gate
from fraud_assets.core.model.scored_rows import (
    CALIBRATION_FOLDS,
    ScoreCounts,
    ScoredRows,
    bin_probabilities,
    content_folds,
    count_scores,
    score_bins,
)
from fraud_assets.core.model.threshold import ThresholdPolicy, choose_threshold
from fraud_assets.core.monitoring import drift


def _held_out(rows: int = 300_000, seed: int = 0, overconfidence: float = 1.0):
    """Labels drawn from a known probability and a model's noisy, optionally overconfident
    estimate of it: a rare class, as in card fraud."""
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(-7.0, 2.0, rows)
    labels = (rng.random(rows) < sigmoid(true_log_odds)).astype(np.int8)
    scores = sigmoid(overconfidence * (true_log_odds + rng.normal(0, 0.7, rows))).astype(np.float32)
    return labels, scores


def _binned(labels, scores, folds=None, parts: int = 3) -> ScoredRows:
    # Added up from several parts, as partitions arrive from the workers.
    totals = ScoreCounts(groups=1, folds=CALIBRATION_FOLDS if folds is not None else 1)
    for rows in np.array_split(np.arange(len(labels)), parts):
        totals.add(count_scores(labels[rows], scores[rows], folds=None if folds is None else folds[rows]))
    return totals.scored_rows()


def test_each_row_sits_at_or_above_its_bin_and_below_the_next():
    # Probabilities are clipped to [1e-7, 1 - 1e-7], as log-loss clips them: 0 and 1 land in
    # the end bins.
    scores = np.r_[np.float32(0.0), np.float32(1.0), np.geomspace(1e-7, 0.999999, 50_000).astype(np.float32)]
    bins = score_bins(scores)
    assert bins[0] == bins[2] and bins[1] == bins.max()
    inner = scores[2:], bins[2:]
    assert np.all(bin_probabilities(inner[1]) <= inner[0])
    assert np.all(inner[0] < bin_probabilities(inner[1] + 1))


def test_binned_scores_give_the_rows_figures():
    labels, scores = _held_out()
    binned = _binned(labels, scores)
    assert binned.rows == len(labels) and binned.frauds == labels.sum()
    assert len(binned.labels) < 30_000  # what crosses the network, whatever the rows

    exact = classification_report(labels, scores, 0.3)
    approx = classification_report(binned.labels, binned.scores, 0.3, binned.weights)
    assert approx["auprc"] == pytest.approx(exact["auprc"], abs=1e-3)
    assert approx["roc_auc"] == pytest.approx(exact["roc_auc"], abs=1e-4)
    assert approx["log_loss"] == pytest.approx(exact["log_loss"], rel=2e-3)
    assert approx["brier"] == pytest.approx(exact["brier"], rel=5e-3)
    assert approx["calibration_error"] == pytest.approx(exact["calibration_error"], abs=2e-4)
    assert approx["rows"] == exact["rows"] and approx["frauds"] == exact["frauds"]

    points = precision_recall_points(binned.labels, binned.scores, 0.3, weights=binned.weights)
    assert step_area(points) == pytest.approx(exact["auprc"], abs=6e-3)


@pytest.mark.parametrize("policy", [ThresholdPolicy("max_f1"), ThresholdPolicy("min_cost", 50.0, 1.0),
                                    ThresholdPolicy("alert_budget", alerts_per_day=400.0)])
def test_a_threshold_chosen_on_bins_flags_what_the_counts_say(policy):
    labels, scores = _held_out(seed=1)
    binned = _binned(labels, scores)
    chosen = choose_threshold(binned.labels, binned.scores, policy, weights=binned.weights,
                              rows_per_day=len(labels) / 2)
    exact = choose_threshold(labels, scores, policy, rows_per_day=len(labels) / 2)
    # The rows the threshold flags are exactly the ones the bins counted above it.
    assert chosen.expected_alerts == np.count_nonzero(scores >= chosen.threshold)
    # And the choice is as good on the rows as the row-by-row one, within a bin's width.
    on_rows = classification_report(labels, scores, chosen.threshold)
    best = classification_report(labels, scores, exact.threshold)
    if policy.strategy == "max_f1":
        assert on_rows["f1"] >= best["f1"] - 0.005
    elif policy.strategy == "alert_budget":
        assert on_rows["confusion_matrix"]["tp"] + on_rows["confusion_matrix"]["fp"] <= 800
        assert on_rows["recall"] >= best["recall"] - 0.01
    else:
        def cost(report):
            return 50.0 * report["confusion_matrix"]["fn"] + report["confusion_matrix"]["fp"]
        assert cost(on_rows) <= cost(best) * 1.01


def test_calibration_on_binned_rows_finds_what_the_rows_find():
    # Scores twice as confident as the truth: Platt scaling should halve the log-odds.
    labels, scores = _held_out(seed=2, overconfidence=2.0)
    frame = pd.DataFrame({"a": np.arange(len(labels)), "b": scores})
    folds = content_folds(frame)
    binned = _binned(labels, scores, folds)
    from_bins, losses = fit_calibration(binned.labels, binned.scores, weights=binned.weights, folds=binned.folds)
    from_rows, _ = fit_calibration(labels, scores)
    assert from_bins.method == from_rows.method == "platt"
    assert losses["platt"] < losses["none"]
    assert from_bins.slope == pytest.approx(from_rows.slope, abs=0.01)
    assert from_bins.intercept == pytest.approx(from_rows.intercept, abs=0.05)


def test_calibration_folds_follow_content_not_partitioning():
    rows = pd.DataFrame({"Time": np.arange(10_000.0), "V1": np.random.default_rng(3).normal(size=10_000)})
    whole = content_folds(rows)
    in_parts = np.concatenate([content_folds(rows.iloc[start:start + 1_500]) for start in range(0, 10_000, 1_500)])
    np.testing.assert_array_equal(whole, in_parts)
    assert np.bincount(whole, minlength=CALIBRATION_FOLDS).min() > 1_800


def test_binned_rows_without_their_folds_are_refused():
    labels, scores = _held_out(rows=20_000, seed=7)
    binned = _binned(labels, scores)
    with pytest.raises(ValueError, match="folds"):
        fit_calibration(binned.labels, binned.scores, weights=binned.weights)


@pytest.mark.parametrize("policy", [ThresholdPolicy("min_cost", 1.0, 1_000.0),
                                    ThresholdPolicy("alert_budget", alerts_per_day=0.0)])
def test_flagging_nothing_flags_no_row_even_at_probability_one(policy):
    # The top-scored rows are genuine: flagging them costs more than missing every fraud.
    labels = np.r_[np.zeros(970, dtype=np.int8), np.ones(30, dtype=np.int8), np.zeros(30, dtype=np.int8)]
    scores = np.r_[np.full(1_000, 0.5, dtype=np.float32), np.ones(30, dtype=np.float32)]
    for rows in (ScoredRows(labels, scores), _binned(labels, scores)):
        choice = choose_threshold(rows.labels, rows.scores, policy, weights=rows.weights)
        # As scoring compares: float32 probabilities against the threshold.
        assert choice.expected_alerts == 0 == np.count_nonzero(scores >= choice.threshold)


def test_too_few_frauds_in_a_fold_leave_the_probabilities_as_they_are():
    labels = np.zeros(1_000, dtype=np.int8)
    labels[0] = 1
    scores = np.full(1_000, 0.01, dtype=np.float32)
    binned = _binned(labels, scores, folds=np.arange(1_000) % CALIBRATION_FOLDS)
    calibration, losses = fit_calibration(binned.labels, binned.scores, weights=binned.weights, folds=binned.folds)
    assert calibration.method == "none" and set(losses) == {"none"}


@pytest.mark.parametrize("distinct_scores", [300, None])
def test_a_drift_reference_from_bins_finds_no_drift_in_the_same_models_scores(distinct_scores):
    # Trees give many ties: a live day scored by the same model sits on the same few values.
    rng = np.random.default_rng(6)
    labels, scores = _held_out(seed=6)
    if distinct_scores:
        values = np.sort(rng.choice(scores, distinct_scores, replace=False))
        scores = values[np.clip(np.searchsorted(values, scores), 0, distinct_scores - 1)]
    reference = profile.build_reference({profile.SCORE: _binned(labels, scores).sample_scores(200_000, seed=0)})
    live = drift.DriftAccumulator(reference)
    live.add({profile.SCORE: rng.choice(scores, 100_000)})
    score = live.report()["features"][profile.SCORE]
    assert score["p_value"] > 0.01 and score["psi"] < 0.01, score


def test_drawn_scores_follow_the_binned_distribution():
    labels, scores = _held_out(seed=4)
    drawn = _binned(labels, scores).sample_scores(50_000, seed=0)
    assert len(drawn) == 50_000
    for quantile in (0.1, 0.5, 0.9, 0.99):
        assert logit(np.quantile(drawn, quantile)) == pytest.approx(logit(np.quantile(scores, quantile)), abs=0.05)


def test_the_gate_judges_binned_scores_as_it_judges_rows():
    labels, candidate = _held_out(seed=5)
    _, production = _held_out(seed=5, overconfidence=1.3)
    models = FraudModel.__new__(FraudModel), FraudModel.__new__(FraudModel)
    models[0].version, models[1].version = "candidate", "production"
    limits = {"auprc_floor": 0.1, "max_regression": 0.02, "max_calibration_error": 0.01}
    by_rows = evaluate_gate(*models, HeldOutScores(ScoredRows(labels, candidate), ScoredRows(labels, production)),
                            **limits)
    by_bins = evaluate_gate(*models, HeldOutScores(_binned(labels, candidate), _binned(labels, production)), **limits)
    assert by_bins.passed == by_rows.passed
    assert by_bins.candidate_auprc == pytest.approx(by_rows.candidate_auprc, abs=1e-3)
    assert by_bins.production_auprc == pytest.approx(by_rows.production_auprc, abs=1e-3)
    assert by_bins.candidate_calibration_error == pytest.approx(by_rows.candidate_calibration_error, abs=2e-4)
