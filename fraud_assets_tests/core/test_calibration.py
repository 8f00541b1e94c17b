"""Calibration of the fraud probabilities: fitted on validation, measured on data whose true
probabilities are known, carried by the bundle, and enforced by the promotion gate."""

from __future__ import annotations

import dataclasses
import json
import os

import fsspec
import numpy as np
import pytest

from fraud_assets.core.data.schema import LABEL, feature_matrix
from fraud_assets.core.model import gate as gate_module
from fraud_assets.core.model.bundle import RELIABILITY_FILE, FraudModel
from fraud_assets.core.model.calibration import (
    Calibration,
    expected_calibration_error,
    fit_calibration,
    log_loss,
    reliability_table,
    sigmoid,
)

LOCAL = fsspec.filesystem("file")


def _known_truth(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from known probabilities of a rare event (about 1%)."""
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(-6.0, 1.5, rows)
    truth = sigmoid(true_log_odds)
    return (rng.random(rows) < truth).astype(np.int64), true_log_odds


def test_platt_scaling_recovers_known_probabilities_from_distorted_ones():
    # A model whose log-odds are stretched and shifted (as class weights and overconfident
    # trees make them): calibrating on one sample brings another near the truth.
    labels, true_log_odds = _known_truth(60_000, seed=1)
    distorted = sigmoid(1.8 * true_log_odds + 3.0)
    calibration, evidence = fit_calibration(labels, distorted)
    assert calibration.method == "platt"
    assert evidence["platt"] < evidence["none"]

    fresh_labels, fresh_log_odds = _known_truth(60_000, seed=2)
    calibrated = calibration.apply(sigmoid(1.8 * fresh_log_odds + 3.0))
    best = log_loss(fresh_labels, sigmoid(fresh_log_odds))
    assert log_loss(fresh_labels, calibrated) < 1.02 * best
    assert log_loss(fresh_labels, sigmoid(1.8 * fresh_log_odds + 3.0)) > 1.1 * best
    assert expected_calibration_error(fresh_labels, calibrated) < 0.003


def test_already_calibrated_probabilities_are_left_alone():
    labels, true_log_odds = _known_truth(60_000, seed=3)
    calibration, evidence = fit_calibration(labels, sigmoid(true_log_odds))
    # Platt may edge out the identity on folds by chance; either way it stays near it.
    assert calibration.method in {"none", "platt"}
    assert calibration.slope == pytest.approx(1.0, abs=0.1)
    assert calibration.intercept == pytest.approx(0.0, abs=0.6)
    assert set(evidence) == {"none", "platt"}


def test_reliability_table_compares_predicted_and_observed_rates_per_bin():
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    scores = np.array([0.0005, 0.0005, 0.02, 0.02, 0.6, 0.6, 0.95, 0.95])
    table = reliability_table(labels, scores)
    assert [(entry["low"], entry["rows"], entry["frauds"]) for entry in table] == [
        (0.0, 2, 0), (0.01, 2, 1), (0.5, 2, 1), (0.9, 2, 2)]
    assert table[1]["observed_rate"] == 0.5 and table[1]["mean_predicted"] == pytest.approx(0.02)
    # Row-weighted gaps: (2*.0005 + 2*.48 + 2*.1 + 2*.05) / 8.
    assert expected_calibration_error(labels, scores) == pytest.approx(
        (0.0005 + 0.48 + 0.1 + 0.05) / 4, abs=1e-6)


def test_trained_model_reports_calibration_in_its_manifest(trained_model, time_splits):
    calibration = trained_model.manifest["calibration"]
    assert calibration["method"] == trained_model.calibration.method
    assert set(calibration["cross_validated_log_loss"]) == {"none", "platt"}
    # The method chosen is the one with the lower cross-validated log-loss.
    losses = calibration["cross_validated_log_loss"]
    assert calibration["method"] == ("platt" if losses["platt"] < losses["none"] else "none")
    assert sum(entry["rows"] for entry in calibration["reliability_test"]) == len(time_splits.test)
    for split in ("validation", "test"):
        metrics = trained_model.metrics[split]
        assert 0 < metrics["log_loss"] < 0.1 and 0 < metrics["brier"] < 0.05
        assert 0 <= metrics["calibration_error"] < 0.01
    # The metrics describe the probabilities the bundle serves.
    test = time_splits.test
    served = trained_model.predict_proba(feature_matrix(test))
    assert trained_model.metrics["test"]["log_loss"] == pytest.approx(log_loss(test[LABEL], served), rel=1e-3)


def test_bundle_carries_calibration_and_reliability_picture(trained_model, time_splits, tmp_path):
    directory = str(tmp_path / "bundle")
    trained_model.save(LOCAL, directory)
    svg = (tmp_path / "bundle" / RELIABILITY_FILE).read_text()
    assert svg.startswith("<svg") and svg.count("<circle") == len(trained_model.manifest["calibration"]["reliability_test"])
    loaded = FraudModel.load(LOCAL, directory)
    assert loaded.calibration == trained_model.calibration
    raw = feature_matrix(time_splits.test)
    np.testing.assert_array_equal(loaded.predict_proba(raw), trained_model.predict_proba(raw))


def test_a_bundle_saved_before_calibration_loads_and_scores_as_before(trained_model, time_splits, tmp_path):
    directory = tmp_path / "old"
    uncalibrated = dataclasses.replace(trained_model, calibration=Calibration(), manifest={
        key: value for key, value in trained_model.manifest.items() if key != "calibration"})
    uncalibrated.save(LOCAL, str(directory))
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["calibration"]  # as the bundles written before this change
    manifest_path.write_text(json.dumps(manifest))
    loaded = FraudModel.load(LOCAL, str(directory))
    assert loaded.calibration == Calibration()
    raw = feature_matrix(time_splits.test)
    margin = trained_model.margin(raw).astype(np.float64) - trained_model.log_odds_correction
    np.testing.assert_allclose(loaded.predict_proba(raw), sigmoid(margin), rtol=1e-6)
    assert not os.path.exists(directory / RELIABILITY_FILE)


def test_gate_refuses_a_miscalibrated_model(trained_model, time_splits):
    test = time_splits.test
    # Odds inflated twentyfold, as an uncorrected class weight would: same ranking, wrong
    # probabilities.
    inflated = dataclasses.replace(trained_model, log_odds_correction=trained_model.log_odds_correction - np.log(20),
                                   calibration=Calibration())
    limit = 0.01
    good = gate_module.evaluate_gate(trained_model, None, test, auprc_floor=0.0, max_regression=0.02,
                                     max_calibration_error=limit)
    bad = gate_module.evaluate_gate(inflated, None, test, auprc_floor=0.0, max_regression=0.02,
                                    max_calibration_error=limit)
    assert good.passed, good.describe()
    assert bad.candidate_auprc == pytest.approx(good.candidate_auprc, abs=1e-4)
    assert not bad.passed and bad.candidate_calibration_error > limit
    assert "calibration error" in bad.describe()
