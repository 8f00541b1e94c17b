"""Threshold policies, splits, preprocessing, training, the model bundle, the promotion gate,
drift statistics and the model registry."""

from __future__ import annotations

import dataclasses
import json
import os

import fsspec
import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance
from sklearn.metrics import average_precision_score

from fraud_assets.core.data import profile
from fraud_assets.core.data.features import (
    MODEL_FEATURES,
    STANDARDISED_FEATURES,
    Preprocessor,
    fit_preprocessor,
)
from fraud_assets.core.data.schema import FEATURE_COLUMNS, LABEL, SECONDS_PER_DAY, TIME
from fraud_assets.core.data.splits import split_transactions
from fraud_assets.core.model import gate as gate_module
from fraud_assets.core.model.bundle import MANIFEST_FILE, MODEL_FILE, PREPROCESSING_FILE, FraudModel
from fraud_assets.core.model.registry import ModelRegistry, UnknownModelVersion
from fraud_assets.core.model.threshold import ThresholdPolicy, choose_threshold
from fraud_assets.core.model.training import train_fraud_model
from fraud_assets.core.monitoring import drift
from fraud_assets.core.storage.locations import Location

LOCAL = fsspec.filesystem("file")


def _raw(frame: pd.DataFrame) -> np.ndarray:
    return frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32)


# --- threshold policies ---------------------------------------------------------------------------

LABELS = np.array([1, 1, 0, 1, 0, 0, 0, 0])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])


def _f1_at(labels, scores, threshold) -> float:
    flagged = scores >= threshold
    tp = np.sum(flagged & (labels == 1))
    return 2 * tp / (flagged.sum() + labels.sum())


def _cost_at(labels, scores, threshold, missed, false_alert) -> float:
    flagged = scores >= threshold
    return missed * np.sum(~flagged & (labels == 1)) + false_alert * np.sum(flagged & (labels == 0))


def test_max_f1_picks_the_known_best_cut():
    # Flag top 1: F1 .50; top 2: .80; top 3: .67; top 4: .857 (best); top 5: .75.
    choice = choose_threshold(LABELS, SCORES, ThresholdPolicy("max_f1"))
    assert choice.threshold == 0.6
    assert choice.expected_alerts == 4
    assert choice.strategy == "max_f1"


def test_max_f1_does_not_split_ties():
    # Flagging only the top two (both frauds) would need a cut between two equal scores.
    labels = np.array([1, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.8, 0.1])
    choice = choose_threshold(labels, scores, ThresholdPolicy("max_f1"))
    assert choice.threshold == 0.8
    assert choice.expected_alerts == 3 == int(np.sum(scores >= choice.threshold))


@pytest.mark.parametrize("seed", range(5))
def test_max_f1_equals_brute_force_on_tied_random_scores(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(400) < 0.1).astype(int)
    labels[0] = 1
    scores = np.round(rng.random(400) * 0.5 + labels * rng.random(400) * 0.5, 2)  # many ties
    choice = choose_threshold(labels, scores, ThresholdPolicy("max_f1"))
    best = max(_f1_at(labels, scores, t) for t in np.unique(scores))
    assert _f1_at(labels, scores, choice.threshold) == pytest.approx(best)
    assert choice.expected_alerts == int(np.sum(scores >= choice.threshold))


def test_min_cost_is_the_brute_force_minimum_and_moves_with_the_costs():
    rng = np.random.default_rng(1)
    labels = (rng.random(500) < 0.05).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0, 1)
    thresholds = {}
    for missed in (1.0, 10.0, 100.0, 1000.0):
        policy = ThresholdPolicy("min_cost", missed_fraud_cost=missed, false_alert_cost=1.0)
        choice = choose_threshold(labels, scores, policy)
        candidates = [*np.unique(scores), np.inf]  # np.inf: flag nothing
        best = min(_cost_at(labels, scores, t, missed, 1.0) for t in candidates)
        assert _cost_at(labels, scores, choice.threshold, missed, 1.0) == pytest.approx(best)
        thresholds[missed] = choice.threshold
    # Dearer missed frauds -> lower threshold (more alerts); never the other way round.
    ordered = [thresholds[m] for m in (1.0, 10.0, 100.0, 1000.0)]
    assert ordered == sorted(ordered, reverse=True)
    assert ordered[0] > ordered[-1]


def test_min_cost_flags_nothing_when_alerts_cost_more_than_frauds():
    labels = np.array([0, 1, 0, 1])  # every cut flags at least one genuine row
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    policy = ThresholdPolicy("min_cost", missed_fraud_cost=1.0, false_alert_cost=1_000.0)
    choice = choose_threshold(labels, scores, policy)
    assert choice.threshold > scores.max()
    assert choice.expected_alerts == 0 == int(np.sum(scores >= choice.threshold))
    # With the costs swapped, flagging everything is cheapest.
    swapped = ThresholdPolicy("min_cost", missed_fraud_cost=1_000.0, false_alert_cost=1.0)
    assert choose_threshold(labels, scores, swapped).threshold == 0.6


def test_alert_budget_is_a_share_of_the_daily_volume():
    rng = np.random.default_rng(2)
    scores = rng.random(1_000)
    labels = (rng.random(1_000) < 0.02).astype(int)
    # 1,000 validation rows at 1,000, 500 and 4,000 expected rows a day.
    for rows_per_day, per_day, expected in ((1_000, 10.0, 10), (500, 10.0, 20), (4_000, 8.0, 2)):
        policy = ThresholdPolicy("alert_budget", alerts_per_day=per_day)
        choice = choose_threshold(labels, scores, policy, rows_per_day=rows_per_day)
        flagged = int(np.sum(scores >= choice.threshold))
        assert flagged == choice.expected_alerts
        assert flagged == expected  # distinct scores: the budget is used exactly


def test_alert_budget_with_ties_stays_within_budget():
    scores = np.array([0.9, 0.8, 0.8, 0.8, 0.1])
    labels = np.array([1, 0, 1, 0, 0])
    choice = choose_threshold(labels, scores, ThresholdPolicy("alert_budget", alerts_per_day=3))
    assert (choice.threshold, choice.expected_alerts) == (0.9, 1)
    tiny = choose_threshold(labels, scores, ThresholdPolicy("alert_budget", alerts_per_day=0.5))
    assert tiny.expected_alerts == 0 and tiny.threshold > 0.9


def test_threshold_errors():
    with pytest.raises(ValueError, match="empty"):
        choose_threshold(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="no frauds"):
        choose_threshold(np.zeros(5), np.linspace(0, 1, 5), ThresholdPolicy("max_f1"))
    with pytest.raises(ValueError, match="unknown threshold strategy 'best'; use one of max_f1"):
        ThresholdPolicy("best")  # refused when the policy is made, before any training


def test_fixed_threshold_is_kept_and_its_alerts_counted():
    choice = choose_threshold(LABELS, SCORES, ThresholdPolicy("fixed", threshold=0.35))
    assert choice.threshold == 0.35 and choice.strategy == "fixed"
    assert choice.expected_alerts == int(np.sum(SCORES >= 0.35))


def test_a_policy_records_only_the_fields_its_strategy_reads():
    assert ThresholdPolicy("fixed", threshold=0.3).to_dict() == {"strategy": "fixed", "threshold": 0.3}
    assert ThresholdPolicy("max_f1").to_dict() == {"strategy": "max_f1"}
    assert ThresholdPolicy("alert_budget", alerts_per_day=7).to_dict() == {
        "strategy": "alert_budget", "alerts_per_day": 7
    }


# --- splits ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shuffled(labelled_frame) -> pd.DataFrame:
    frame = labelled_frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame["row"] = np.arange(len(frame))
    return frame


def test_time_split_puts_every_train_row_before_every_test_row(shuffled):
    splits = split_transactions(shuffled, strategy="time", validation_fraction=0.2, test_fraction=0.2)
    assert splits.train[TIME].max() <= splits.validation[TIME].min()
    assert splits.validation[TIME].max() <= splits.test[TIME].min()
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (18_000, 6_000, 6_000)
    rows = np.concatenate([splits.train["row"], splits.validation["row"], splits.test["row"]])
    assert np.array_equal(np.sort(rows), np.arange(len(shuffled)))  # a partition, no overlap


def test_stratified_split_keeps_prevalence(shuffled):
    splits = split_transactions(shuffled, strategy="stratified", seed=3)
    overall = shuffled[LABEL].mean()
    for part in (splits.train, splits.validation, splits.test):
        # Within one fraud of the overall rate.
        assert abs(part[LABEL].sum() - overall * len(part)) <= 1
        assert part["row"].is_monotonic_increasing  # back in file order
    rows = np.concatenate([splits.train["row"], splits.validation["row"], splits.test["row"]])
    assert np.array_equal(np.sort(rows), np.arange(len(shuffled)))
    again = split_transactions(shuffled, strategy="stratified", seed=3)
    other = split_transactions(shuffled, strategy="stratified", seed=4)
    assert again.test["row"].tolist() == splits.test["row"].tolist()
    assert other.test["row"].tolist() != splits.test["row"].tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validation_fraction": 0.0}, "must lie in"),
        ({"test_fraction": 1.0}, "must lie in"),
        ({"validation_fraction": -0.1}, "must lie in"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, "leave rows for training"),
        ({"strategy": "random"}, "unknown split strategy"),
    ],
)
def test_split_arguments_are_validated(shuffled, kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_transactions(shuffled, **kwargs)


# --- preprocessing ---------------------------------------------------------------------------------


def test_preprocessor_standardises_training_features(time_splits):
    preprocessor = fit_preprocessor(time_splits.train)
    assert preprocessor.feature_names == MODEL_FEATURES
    features = preprocessor.transform_frame(time_splits.train).astype(np.float64)[:, :len(STANDARDISED_FEATURES)]
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(features.std(axis=0), 1.0, atol=1e-3)


def test_distance_features_measure_how_far_the_components_lie_from_the_training_centre():
    identity = Preprocessor(center=(0.0,) * len(STANDARDISED_FEATURES), scale=(1.0,) * len(STANDARDISED_FEATURES))
    raw = np.zeros((3, len(FEATURE_COLUMNS)), np.float32)
    raw[1, FEATURE_COLUMNS.index("V1")], raw[1, FEATURE_COLUMNS.index("V2")] = 3.0, -4.0
    raw[2, FEATURE_COLUMNS.index("V28")] = 5.0
    raw[:, FEATURE_COLUMNS.index("Amount")] = 1e6  # amount and hour are not components
    out = identity.transform(raw)
    distance, deviation = (out[:, MODEL_FEATURES.index(name)] for name in ("pca_distance", "pca_log_deviation"))
    np.testing.assert_allclose(distance, np.log1p([0.0, 25.0, 25.0]), rtol=1e-6)
    np.testing.assert_allclose(deviation, [0.0, np.log1p(3.0) + np.log1p(4.0), np.log1p(5.0)], rtol=1e-6)


def test_distance_features_are_computed_after_standardising(time_splits):
    preprocessor = fit_preprocessor(time_splits.train)
    features = preprocessor.transform(_raw(time_splits.test))
    components = features[:, :28].astype(np.float64)
    np.testing.assert_allclose(features[:, MODEL_FEATURES.index("pca_distance")],
                               np.log1p((components**2).sum(axis=1)), rtol=1e-5)


def test_a_bundle_from_before_the_distance_features_loads_and_transforms_as_trained(time_splits):
    """Registry versions trained on 31 features keep scoring after the upgrade."""
    document = fit_preprocessor(time_splits.train).to_dict()
    document.update(kind="standardize-v1", feature_names=list(STANDARDISED_FEATURES))
    legacy = Preprocessor.from_dict(document)
    raw = _raw(time_splits.test)
    np.testing.assert_array_equal(legacy.transform(raw), fit_preprocessor(time_splits.train).transform(raw)[:, :31])
    assert legacy.transform(raw).shape[1] == 31
    assert json.loads(legacy.to_json())["kind"] == "standardize-v1"


def test_preprocessor_hour_is_periodic_and_amount_is_logged(time_splits):
    preprocessor = fit_preprocessor(time_splits.train)
    row = _raw(time_splits.train.head(1))
    next_day = row.copy()
    next_day[0, FEATURE_COLUMNS.index(TIME)] += SECONDS_PER_DAY
    np.testing.assert_allclose(preprocessor.transform(row), preprocessor.transform(next_day), atol=1e-4)
    identity = Preprocessor(center=(0.0,) * len(STANDARDISED_FEATURES), scale=(1.0,) * len(STANDARDISED_FEATURES))
    raw = np.zeros((1, len(FEATURE_COLUMNS)), np.float32)
    raw[0, FEATURE_COLUMNS.index("Amount")] = np.e - 1
    out = identity.transform(raw)[0]
    assert out[MODEL_FEATURES.index("log_amount")] == pytest.approx(1.0)
    assert out[MODEL_FEATURES.index("hour_cos")] == pytest.approx(1.0)  # midnight
    with pytest.raises(ValueError, match="expected 30 columns"):
        identity.transform(raw[:, :29])


def test_preprocessor_json_round_trip_gives_identical_transforms(time_splits):
    preprocessor = fit_preprocessor(time_splits.train)
    text = preprocessor.to_json()
    assert json.loads(text)["kind"] == "standardize-v2"
    restored = Preprocessor.from_json(text)
    assert restored == preprocessor
    raw = _raw(time_splits.test)
    np.testing.assert_array_equal(restored.transform(raw), preprocessor.transform(raw))


@pytest.mark.parametrize("kind", ["pickle", None, "standardize-v3"])
def test_preprocessor_refuses_unknown_kinds(time_splits, kind):
    document = fit_preprocessor(time_splits.train).to_dict()
    document["kind"] = kind
    with pytest.raises(ValueError, match="unknown preprocessing kind"):
        Preprocessor.from_dict(document)


def _swap_first_two(values: list) -> list:
    return [values[1], values[0], *values[2:]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(input_columns=_swap_first_two(d["input_columns"])), "input_columns must be"),
        (lambda d: d.update(feature_names=_swap_first_two(d["feature_names"])), "feature_names do not match"),
        # A v1 document naming the new features: its booster was trained on 31 columns.
        (lambda d: d.update(kind="standardize-v1"), "feature_names do not match"),
        (lambda d: d.update(center=d["center"][:-1]), "center and scale need"),
        (lambda d: d["scale"].__setitem__(3, 0.0), "scale finite and positive"),
        (lambda d: d["center"].__setitem__(3, float("nan")), "center must be finite"),
    ],
)
def test_preprocessing_that_would_be_misapplied_is_refused(time_splits, change, message):
    """transform computes one fixed layout: a file describing another is refused, not used."""
    document = fit_preprocessor(time_splits.train).to_dict()
    change(document)
    with pytest.raises(ValueError, match=message):
        Preprocessor.from_dict(document)


# --- training and the bundle -----------------------------------------------------------------------


def test_training_gives_probabilities_threshold_and_useful_metrics(trained_model, early_stopped_model, time_splits):
    probabilities = trained_model.predict_proba(_raw(time_splits.test))
    assert probabilities.shape == (len(time_splits.test),)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert 0.0 < trained_model.threshold < 1.0
    test = trained_model.metrics["test"]
    prevalence = time_splits.test[LABEL].mean()
    assert test["rows"] == len(time_splits.test)
    assert test["frauds"] == int(time_splits.test[LABEL].sum())
    assert test["auprc"] > max(0.3, 10 * prevalence)
    assert test["roc_auc"] > 0.9
    cm = test["confusion_matrix"]
    assert cm["tp"] + cm["fn"] == test["frauds"]
    assert cm["tp"] + cm["fp"] == int(np.sum(probabilities >= trained_model.threshold))
    # The threshold was chosen by the default policy (max F1) on validation rows, scored by the
    # model early stopping cut: the shipped one is refitted on them, so its scores are in-sample.
    valid = time_splits.validation
    best = choose_threshold(valid[LABEL].to_numpy(),
                            early_stopped_model.predict_proba(_raw(valid)), ThresholdPolicy("max_f1"))
    assert trained_model.threshold == pytest.approx(best.threshold)


@pytest.fixture(scope="module")
def early_stopped_model(time_splits, fast_config):
    """The session model without its refit on validation."""
    return train_fraud_model(time_splits, fit_preprocessor(time_splits.train),
                             dataclasses.replace(fast_config, refit_on_validation=False))


def test_the_shipped_model_is_refitted_on_train_and_validation_with_early_stoppings_rounds(
        trained_model, early_stopped_model, time_splits):
    training = trained_model.manifest["training"]
    rounds = training["best_iteration"] + 1
    assert training["best_iteration"] == early_stopped_model.manifest["training"]["best_iteration"]
    assert training["refit"] == {
        "rows": len(time_splits.train) + len(time_splits.validation),
        "frauds": int(time_splits.train[LABEL].sum() + time_splits.validation[LABEL].sum()),
        "rounds": rounds,
    }
    assert early_stopped_model.manifest["training"]["refit"] is None
    assert trained_model.booster.num_boosted_rounds() == rounds == early_stopped_model.booster.num_boosted_rounds()
    assert trained_model.booster_bytes != early_stopped_model.booster_bytes
    # What validation decided is the same on both: it was decided before the refit.
    assert trained_model.calibration == early_stopped_model.calibration
    assert trained_model.threshold == early_stopped_model.threshold
    assert trained_model.metrics["validation"] == early_stopped_model.metrics["validation"]
    # The score reference for drift is the shipped model's, on rows it never saw: another
    # model's scores, or its own on rows it trained on, are spread differently from what it
    # gives production, which would then look drifted.
    for model, rows in ((trained_model, time_splits.test), (early_stopped_model, time_splits.validation)):
        recorded = model.manifest["drift_reference"][profile.SCORE]
        expected = profile.profile_feature(model.predict_proba(_raw(rows))).to_dict()
        assert recorded["rows"] == expected["rows"] == len(rows)
        for key in ("grid", "psi_edges", "std"):
            assert recorded[key] == pytest.approx(expected[key], rel=1e-5), key
    # The test split is scored by the model shipped, as the gate scores it.
    test = time_splits.test
    assert trained_model.metrics["test"]["auprc"] == pytest.approx(
        average_precision_score(test[LABEL], trained_model.predict_proba(_raw(test))), abs=1e-6)


def test_log_odds_correction_restores_the_prevalence_scale(trained_model, time_splits):
    # scale_pos_weight inflates the odds by the weight; after the correction the mean
    # probability is near the real fraud rate, without it several times too high.
    weight = trained_model.manifest["training"]["scale_pos_weight"]
    assert trained_model.log_odds_correction == pytest.approx(np.log(weight))
    assert weight > 3
    raw = _raw(time_splits.test)
    prevalence = time_splits.test[LABEL].mean()
    corrected = trained_model.predict_proba(raw).mean()
    uncorrected = dataclasses.replace(trained_model, log_odds_correction=0.0).predict_proba(raw).mean()
    assert prevalence / 2 < corrected < prevalence * 2
    assert uncorrected > 2 * corrected


def test_training_refuses_splits_without_frauds(time_splits, fast_config):
    from fraud_assets.core.data.splits import Splits
    from fraud_assets.core.model.training import train_fraud_model

    genuine = time_splits.validation[time_splits.validation[LABEL] == 0]
    splits = Splits(train=time_splits.train, validation=genuine, test=time_splits.test)
    with pytest.raises(ValueError, match="need frauds"):
        train_fraud_model(splits, fit_preprocessor(time_splits.train), fast_config)


def test_bundle_round_trip_gives_identical_predictions(trained_model, time_splits, tmp_path):
    directory = tmp_path / "bundle"
    trained_model.save(LOCAL, str(directory))
    assert sorted(os.listdir(directory)) == sorted([MODEL_FILE, PREPROCESSING_FILE, MANIFEST_FILE, "pr_curve.svg", "reliability.svg"])
    loaded = FraudModel.load(LOCAL, str(directory))
    assert loaded.version == trained_model.version
    assert loaded.threshold == trained_model.threshold
    assert loaded.log_odds_correction == trained_model.log_odds_correction
    assert loaded.preprocessor == trained_model.preprocessor
    assert loaded.metrics == json.loads(json.dumps(trained_model.metrics))
    raw = _raw(time_splits.test)
    np.testing.assert_array_equal(loaded.predict_proba(raw), trained_model.predict_proba(raw))
    reference = profile.reference_from_dict(loaded.drift_reference)
    assert set(reference) == {*profile.DRIFT_FEATURES, profile.SCORE}


# --- the promotion gate ------------------------------------------------------------------------------


class _ScoreModel:
    """A stand-in with fixed scores, for gate decisions at exactly known AUPRCs."""

    def __init__(self, version: str, scores: np.ndarray):
        self.version, self._scores = version, scores

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        assert len(raw) == len(self._scores)
        return self._scores


def _graded(test: pd.DataFrame, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return test[LABEL].to_numpy() + rng.normal(0, noise, len(test))


def _gate(candidate, production, test, floor=0.5, regression=0.02):
    return gate_module.evaluate_gate(candidate, production, test, auprc_floor=floor,
                                     max_regression=regression)


def test_gate_fails_a_candidate_below_the_floor(time_splits):
    test = time_splits.test
    weak = _ScoreModel("weak", _graded(test, noise=2.0))
    result = _gate(weak, None, test, floor=0.5)
    assert result.candidate_auprc < 0.5
    assert not result.passed
    assert "< floor" in result.describe()


def test_gate_without_production_applies_only_the_floor(trained_model, time_splits):
    test = time_splits.test
    result = _gate(trained_model, None, test, floor=0.3)
    assert result.passed and result.production_auprc is None
    assert "no production model yet" in result.reasons
    exact = _gate(trained_model, None, test, floor=result.candidate_auprc)
    assert exact.passed  # the floor itself is good enough
    assert not _gate(trained_model, None, test, floor=result.candidate_auprc + 1e-9).passed


def test_gate_fails_a_candidate_much_worse_than_production(trained_model, time_splits):
    test = time_splits.test
    perfect = _ScoreModel("perfect", test[LABEL].to_numpy().astype(float))
    result = _gate(trained_model, perfect, test, floor=0.3, regression=0.02)
    assert result.candidate_auprc >= 0.3  # clears the floor ...
    assert result.production_auprc == pytest.approx(1.0)
    assert not result.passed  # ... but is more than 0.02 worse than production
    assert "more than 0.0200 of production perfect" in result.describe()


def test_gate_passes_an_equal_or_better_candidate(trained_model, time_splits):
    test = time_splits.test
    same = _gate(trained_model, trained_model, test)
    assert same.passed and same.candidate_auprc == same.production_auprc
    worse = _ScoreModel("worse", _graded(test, noise=0.8))
    better = _gate(trained_model, worse, test)
    assert better.passed and better.candidate_auprc > better.production_auprc
    # The reverse of that pair fails: the gate is not symmetric.
    assert not _gate(worse, trained_model, test, floor=0.0).passed


def test_gate_within_allowed_regression_passes(time_splits):
    test = time_splits.test
    production = _ScoreModel("prod", _graded(test, noise=0.3, seed=1))
    candidate = _ScoreModel("cand", _graded(test, noise=0.35, seed=2))
    probe = _gate(candidate, production, test, floor=0.0, regression=0.0)
    drop = probe.production_auprc - probe.candidate_auprc
    assert drop > 0 and not probe.passed
    assert _gate(candidate, production, test, floor=0.0, regression=drop + 1e-6).passed
    assert not _gate(candidate, production, test, floor=0.0, regression=drop / 2).passed


def test_gate_needs_frauds_in_test(trained_model, time_splits):
    genuine = time_splits.test[time_splits.test[LABEL] == 0]
    with pytest.raises(ValueError, match="no frauds"):
        _gate(trained_model, None, genuine)


# --- drift ----------------------------------------------------------------------------------------


def _normal_reference(rng, n=20_000):
    return {"x": rng.normal(0, 2, n), "y": rng.exponential(1, n)}


def test_identical_distributions_are_stable():
    rng = np.random.default_rng(0)
    reference = profile.build_reference(_normal_reference(rng))
    report = drift.compare(reference, _normal_reference(rng))
    assert not report["drift_detected"]
    assert report["drift_level"] == "none" and report["reasons"] == []
    for stats in report["features"].values():
        assert stats["psi"] < 0.02 and stats["wasserstein_scaled"] < 0.05
        assert stats["level"] == "none" and not stats["drifted"]


def test_shifted_distributions_are_major():
    rng = np.random.default_rng(1)
    reference = profile.build_reference(_normal_reference(rng))
    current = _normal_reference(rng)
    current["x"] = current["x"] + 2.0  # one reference std
    current["y"] = current["y"] * 3.0
    report = drift.compare(reference, current)
    assert report["drift_detected"] and report["drift_level"] == "major"
    assert set(report["drifted_features"]) == {"x", "y"}
    assert report["features"]["x"]["level"] == "major"
    assert report["features"]["x"]["wasserstein_scaled"] == pytest.approx(1.0, rel=0.05)


def test_one_drifted_feature_of_two_meets_the_default_share():
    rng = np.random.default_rng(2)
    reference = profile.build_reference(_normal_reference(rng))
    current = _normal_reference(rng)
    current["x"] = current["x"] + 0.6  # 0.3 reference std: past the major Wasserstein bound
    report = drift.compare(reference, current)
    assert report["drifted_features"] == ["x"] and report["drift_share"] == 0.5
    assert report["drift_detected"] and report["drift_level"] == "major"  # 0.5 >= major_share
    strict = drift.compare(reference, current, drift.DriftThresholds(major_share=0.75))
    # Not major at a 75 % share, but a feature at the major level still makes it "moderate",
    # and moderate is detected: the two never disagree.
    assert strict["drift_detected"] and strict["drift_level"] == "moderate"
    assert strict["features"]["x"]["psi"] < 0.25  # the shift is caught by Wasserstein


def test_streaming_over_chunks_equals_one_shot():
    rng = np.random.default_rng(3)
    reference = profile.build_reference(_normal_reference(rng))
    current = _normal_reference(rng, 9_999)
    current["x"] = current["x"] * 1.3 + 0.2
    one_shot = drift.compare(reference, current)
    accumulator = drift.DriftAccumulator(reference)
    for start in range(0, 9_999, 1_234):
        accumulator.add({name: values[start : start + 1_234] for name, values in current.items()})
    streamed = accumulator.report()
    assert streamed["rows"] == one_shot["rows"] == 9_999
    assert streamed["drift_detected"] == one_shot["drift_detected"]
    for name in current:
        for key in ("psi", "wasserstein_scaled"):
            assert streamed["features"][name][key] == pytest.approx(
                one_shot["features"][name][key], abs=1e-6
            )


def test_psi_with_empty_bins_is_finite_and_major():
    rng = np.random.default_rng(4)
    reference = profile.build_reference({"x": rng.normal(0, 1, 5_000)})
    report = drift.compare(reference, {"x": np.full(1_000, 50.0)})  # all in the top bin
    psi = report["features"]["x"]["psi"]
    assert np.isfinite(psi) and psi > 0.25
    assert report["features"]["x"]["level"] == "major"


def test_psi_with_an_empty_reference_bin_is_finite():
    # Over 90 % ties (as with the scores of a small tree model) collapse the deciles into one
    # edge, leaving the reference's lower bin empty; current values landing there must give a
    # large but finite PSI, and current data like the reference must stay stable.
    rng = np.random.default_rng(8)
    values = np.where(rng.random(5_000) < 0.93, 0.01, 0.5 + rng.random(5_000) / 2)
    reference = profile.build_reference({"score": values})
    assert reference["score"].psi_fractions[0] == 0.0
    moved = drift.compare(reference, {"score": np.full(500, 0.001)})["features"]["score"]
    assert np.isfinite(moved["psi"]) and moved["level"] == "major"
    same = drift.compare(reference, {"score": values[:2_000]})["features"]["score"]
    assert same["psi"] < 0.01


@pytest.mark.parametrize("shift", [0.05, 0.3, 1.0, -2.0])
def test_wasserstein_of_a_pure_shift_is_the_shift(shift):
    rng = np.random.default_rng(5)
    values = rng.standard_t(5, 20_000) * 1.5  # heavy tails, like the V columns
    reference = profile.build_reference({"x": values})
    shifted = values + shift
    report = drift.compare(reference, {"x": shifted})
    ours = report["features"]["x"]["wasserstein_scaled"] * reference["x"].std
    assert wasserstein_distance(values, shifted) == pytest.approx(abs(shift))
    assert ours == pytest.approx(abs(shift), rel=0.05)  # 1,000-point grid: a few % at most


@pytest.mark.parametrize(("shift", "widen"), [(0.0, 1.0), (0.3, 1.0), (0.0, 1.5), (-1.0, 0.7)])
def test_wasserstein_matches_scipy_on_independent_samples(shift, widen):
    rng = np.random.default_rng(7)
    reference_values = rng.standard_t(5, 20_000) * 1.5
    current_values = rng.standard_t(5, 10_000) * 1.5 * widen + shift
    reference = profile.build_reference({"x": reference_values})
    report = drift.compare(reference, {"x": current_values})
    ours = report["features"]["x"]["wasserstein_scaled"] * reference["x"].std
    exact = wasserstein_distance(reference_values, current_values)
    assert ours == pytest.approx(exact, rel=0.05, abs=0.003)


def test_reference_survives_json_and_rejects_empty():
    rng = np.random.default_rng(6)
    reference = profile.build_reference({"x": rng.normal(0, 1, 3_000)})
    restored = profile.reference_from_dict(json.loads(json.dumps(profile.reference_to_dict(reference))))
    current = {"x": rng.normal(0.3, 1, 2_000)}
    assert drift.compare(restored, current) == drift.compare(reference, current)
    with pytest.raises(ValueError, match="empty reference"):
        profile.profile_feature(np.array([]))
    with pytest.raises(ValueError, match="no current rows"):
        drift.DriftAccumulator(reference).report()


# --- registry --------------------------------------------------------------------------------------


def _version(model: FraudModel, version: str) -> FraudModel:
    return dataclasses.replace(model, version=version)


@pytest.fixture
def registry(tmp_path, trained_model) -> ModelRegistry:
    registry = ModelRegistry(Location(str(tmp_path / "models")))
    for version in ("xgb-20250101T000000Z-aaaa", "xgb-20250102T000000Z-bbbb",
                    "xgb-20250103T000000Z-cccc"):
        registry.save(_version(trained_model, version))
    return registry


def test_registry_lists_versions_and_latest_without_production(registry, trained_model):
    assert registry.version_ids() == ["xgb-20250101T000000Z-aaaa", "xgb-20250102T000000Z-bbbb",
                                      "xgb-20250103T000000Z-cccc"]
    assert registry.latest_version() == "xgb-20250103T000000Z-cccc"
    assert registry.production_version() is None and registry.load_production() is None
    assert registry.load_latest().version == "xgb-20250103T000000Z-cccc"
    rows = registry.describe_versions()
    assert [r["production"] for r in rows] == [False, False, False]
    expected = pytest.approx(trained_model.metrics["test"]["auprc"])
    assert [r["test_auprc"] for r in rows] == [expected] * 3


def test_registry_ignores_incomplete_versions(registry):
    incomplete = registry.location.path("xgb-20250104T000000Z-dddd")
    LOCAL.makedirs(incomplete)
    LOCAL.pipe(f"{incomplete}/{MODEL_FILE}", b"half-written")
    assert "xgb-20250104T000000Z-dddd" not in registry.version_ids()
    with pytest.raises(UnknownModelVersion):
        registry.load("xgb-20250104T000000Z-dddd")


def test_promote_and_rollback_keep_history(registry, time_splits):
    first, second = "xgb-20250101T000000Z-aaaa", "xgb-20250102T000000Z-bbbb"
    registry.promote(first, reason="initial")
    registry.promote(second, reason="gate passed")
    assert registry.production_version() == second
    record = registry.promote(first, reason="rollback")
    assert registry.production_version() == first
    assert [h["version"] for h in record["history"]] == [first, second]
    assert [h["reason"] for h in record["history"]] == ["initial", "gate passed"]
    assert registry.production_record()["reason"] == "rollback"
    # latest is the newest trained model, independent of what serves.
    assert registry.latest_version() == "xgb-20250103T000000Z-cccc"
    assert registry.load_production().version == first
    assert [r["production"] for r in registry.describe_versions()] == [True, False, False]


def test_unknown_version_error_lists_known_versions(registry):
    with pytest.raises(UnknownModelVersion) as caught:
        registry.promote("xgb-nope", reason="typo")
    message = str(caught.value)
    assert "'xgb-nope'" in message
    assert "known: xgb-20250101T000000Z-aaaa, xgb-20250102T000000Z-bbbb, " \
           "xgb-20250103T000000Z-cccc" in message
    assert registry.production_version() is None
    with pytest.raises(UnknownModelVersion, match="invalid model version"):
        registry.load("../etc")


def test_empty_registry(tmp_path):
    registry = ModelRegistry(Location(str(tmp_path / "none")))
    assert registry.version_ids() == []
    with pytest.raises(UnknownModelVersion, match="no trained model"):
        registry.load_latest()
    with pytest.raises(UnknownModelVersion, match="known: none"):
        registry.promote("xgb-1", reason="x")


def test_copy_to_backs_up_restores_and_skips_existing(registry, tmp_path, time_splits):
    registry.promote("xgb-20250102T000000Z-bbbb", reason="serve")
    backup = ModelRegistry(Location(str(tmp_path / "backups")))
    assert registry.copy_to(backup) == registry.version_ids()
    assert backup.version_ids() == registry.version_ids()
    assert backup.production_version() == "xgb-20250102T000000Z-bbbb"
    assert backup.latest_version() == "xgb-20250103T000000Z-cccc"
    assert registry.copy_to(backup) == []  # nothing new

    raw = _raw(time_splits.test.head(200))
    np.testing.assert_array_equal(backup.load("xgb-20250101T000000Z-aaaa").predict_proba(raw),
                                  registry.load("xgb-20250101T000000Z-aaaa").predict_proba(raw))

    # Restore one version into an empty registry: only that version, no pointers.
    restored = ModelRegistry(Location(str(tmp_path / "restored")))
    assert backup.copy_to(restored, ["xgb-20250101T000000Z-aaaa"]) == ["xgb-20250101T000000Z-aaaa"]
    assert restored.version_ids() == ["xgb-20250101T000000Z-aaaa"]
    assert restored.production_version() is None
    # A full restore copies the rest and the pointers, skipping what is already there.
    assert backup.copy_to(restored) == ["xgb-20250102T000000Z-bbbb", "xgb-20250103T000000Z-cccc"]
    assert restored.production_version() == "xgb-20250102T000000Z-bbbb"
    with pytest.raises(UnknownModelVersion, match="known:"):
        backup.copy_to(restored, ["xgb-missing"])


def test_a_used_model_still_travels_between_processes(trained_model, time_splits):
    # A Dask worker that has scored with the model hands it to another worker by pickle; the
    # loaded predictors hold native pointers and must stay behind, rebuilt where it lands.
    import pickle

    features = _raw(time_splits.test)[:500]
    used = dataclasses.replace(trained_model)
    expected = used.predict_proba(features)
    travelled = pickle.loads(pickle.dumps(used))
    assert "predictor" not in travelled.__dict__
    np.testing.assert_array_equal(travelled.predict_proba(features), expected)


@pytest.mark.parametrize("value", [0.1, 123.456, 1e4 / 3])
def test_preprocessing_from_sums_leaves_a_constant_column_unscaled_as_one_process_does(value):
    from fraud_assets.core.data.features import preprocessor_from_moments, unscaled_features
    from fraud_assets.synthetic.generate import generate_transactions

    frame = generate_transactions(2_000, seed=4).assign(V3=value)
    unscaled = unscaled_features(frame)
    # Two partitions' sums, as the workers send them.
    halves = np.array_split(unscaled, 2)
    sums = sum(part.sum(axis=0) for part in halves)
    squares = sum((part**2).sum(axis=0) for part in halves)
    from_sums = preprocessor_from_moments(len(unscaled), sums, squares)
    one_process = fit_preprocessor(frame)
    column = list(one_process.feature_names).index("V3")
    assert one_process.scale[column] == from_sums.scale[column] == 1.0
    np.testing.assert_allclose(from_sums.scale, one_process.scale, rtol=1e-9)
