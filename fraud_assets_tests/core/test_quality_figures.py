"""What a user sees: the precision-recall points and pictures, the drift verdict, the alert
budget and the manifest's provenance, on real curves and on data from other distributions."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score

from fraud_assets.core.data import profile
from fraud_assets.core.data.schema import AMOUNT, PCA_COLUMNS, TIME
from fraud_assets.core.data.splits import Splits
from fraud_assets.core.model import pictures
from fraud_assets.core.model.evaluation import classification_report, precision_recall_points, step_area
from fraud_assets.core.model.provenance import data_fingerprint
from fraud_assets.core.model.training import rows_per_day
from fraud_assets.core.monitoring import drift, verdict

# --- precision-recall points ----------------------------------------------------------------------


def _imbalanced_curve(seed: int, weight: float, flip: float):
    """Scores of a small XGBoost model on sklearn's make_classification, not our generator."""
    x, y = make_classification(40_000, 20, n_informative=6, weights=[weight], flip_y=flip,
                               class_sep=0.8, random_state=seed)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 1},
                        xgb.DMatrix(x[:25_000], y[:25_000]), 60)
    return y[25_000:], booster.predict(xgb.DMatrix(x[25_000:]))


CURVES = [(0, 0.995, 0.01), (1, 0.998, 0.02), (2, 0.99, 0.05)]


@pytest.mark.parametrize(("seed", "weight", "flip"), CURVES)
def test_thinned_points_keep_the_area_of_a_real_curve(seed, weight, flip):
    labels, scores = _imbalanced_curve(seed, weight, flip)
    threshold = float(np.quantile(scores, 0.995))
    points = precision_recall_points(labels, scores, threshold)
    assert len(points) <= 400
    assert abs(step_area(points) - average_precision_score(labels, scores)) <= 0.01
    report = classification_report(labels, scores, threshold)
    assert (round(report["recall"], 4), round(report["precision"], 4)) in points
    recalls = [r for r, _ in points]
    assert recalls == sorted(recalls) and recalls[-1] == 1.0


def test_the_generator_model_curve_keeps_its_area(trained_model):
    test = trained_model.metrics["test"]
    points = trained_model.manifest["pr_curve_test"]
    assert abs(step_area(points) - test["auprc"]) <= 0.01
    assert (round(test["recall"], 4), round(test["precision"], 4)) in points


def test_pictures_of_a_real_curve_are_valid_svg_with_the_threshold_marked(trained_model, tmp_path):
    test = trained_model.metrics["test"]
    points = trained_model.manifest["pr_curve_test"]
    svg = pictures.precision_recall_svg(points, (test["recall"], test["precision"]), "PR")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert any(element.tag.endswith("circle") for element in root.iter())  # the threshold
    text = pictures.precision_recall_text(points, (test["recall"], test["precision"]))
    assert len(text) < 1_000  # what the UI shows inline
    marked = [line for line in text.splitlines() if line.endswith("◀")]
    assert len(marked) == 1  # the row of the threshold's recall
    assert text.splitlines()[-1] == (
        f"◀ threshold: P {test['precision']:.2f}, R {test['recall']:.2f}"
    )
    # Every line stays short enough for the UI's value column.
    assert max(len(line) for line in text.splitlines()) <= 40
    trained_model.save(__import__("fsspec").filesystem("file"), str(tmp_path))
    ET.parse(tmp_path / "pr_curve.svg")


def test_score_histogram_counts_every_score_and_marks_the_threshold():
    labels, scores = _imbalanced_curve(0, 0.995, 0.01)
    counts = pictures.score_histogram(np.array_split(scores, 7))
    assert counts.sum() == len(scores)
    flagged_bins = counts[pictures.SCORE_EDGES[:-1] >= 0.3].sum()
    assert flagged_bins <= np.sum(scores >= 0.3)
    root = ET.fromstring(pictures.score_histogram_svg(counts, 0.3, "scores"))
    assert any(element.tag.endswith("line") for element in root.iter())
    assert len(pictures.score_histogram_text(counts, 0.3)) < 1_000


# --- drift verdict on data from other distributions -------------------------------------------------

NAMES = [*PCA_COLUMNS, AMOUNT]


def _heavy_tailed(rng, rows: int) -> dict[str, np.ndarray]:
    """Student-t features (3 degrees of freedom) with made-up scales, and a log-normal amount:
    nothing like the project's generator."""
    scales = np.linspace(3.0, 0.2, len(PCA_COLUMNS))
    columns = {name: rng.standard_t(3, rows) * scale for name, scale in zip(PCA_COLUMNS, scales, strict=True)}
    columns[AMOUNT] = rng.lognormal(3.0, 1.3, rows)
    return columns


def _shift(columns: dict, reference: dict) -> dict:
    """Half a standard deviation on V1..V5, amounts up 50 %."""
    moved = dict(columns)
    for name in ("V1", "V2", "V3", "V4", "V5"):
        moved[name] = columns[name] + 0.5 * reference[name].std()
    moved[AMOUNT] = columns[AMOUNT] * 1.5
    return moved


@pytest.mark.parametrize("rows", [300, 5_000, 60_000])
def test_verdict_flags_a_shift_and_stays_quiet_on_a_fresh_batch(rows):
    rng = np.random.default_rng(rows)
    training = _heavy_tailed(rng, 100_000)
    reference = profile.build_reference(training)
    fresh = drift.compare(reference, _heavy_tailed(rng, rows))
    assert fresh["drift_level"] == "none" and fresh["drift_detected"] is False
    shifted = drift.compare(reference, _shift(_heavy_tailed(rng, rows), training))
    assert shifted["drift_detected"] is True and shifted["drift_level"] in ("moderate", "major")
    assert set(shifted["drifted_features"]) == {"V1", "V2", "V3", "V4", "V5", AMOUNT}


def test_fresh_batches_stay_quiet_across_seeds():
    rng = np.random.default_rng(99)
    reference = profile.build_reference(_heavy_tailed(rng, 100_000))
    levels = [drift.compare(reference, _heavy_tailed(rng, 1_000))["drift_level"] for _ in range(20)]
    assert levels.count("none") >= 19  # a 5 % family-wise error rate, at most


def test_the_verdict_is_one_thing():
    rng = np.random.default_rng(5)
    training = _heavy_tailed(rng, 50_000)
    reference = profile.build_reference(training)
    for current in (_heavy_tailed(rng, 2_000), _shift(_heavy_tailed(rng, 2_000), training)):
        report = drift.compare(reference, current)
        assert report["drift_detected"] == (report["drift_level"] != "none")


def test_importance_weights_make_a_drift_in_what_the_model_uses_major():
    rng = np.random.default_rng(6)
    training = _heavy_tailed(rng, 50_000)
    reference = profile.build_reference(training)
    current = _heavy_tailed(rng, 5_000)
    current["V14"] = current["V14"] + training["V14"].std()
    assert drift.compare(reference, current)["drift_level"] == "moderate"
    leaning = {"V14": 0.7, **{name: 0.3 / 29 for name in NAMES if name != "V14"}}
    assert drift.compare(reference, current, importance=leaning)["drift_level"] == "major"


def test_score_drift_alone_is_reported():
    rng = np.random.default_rng(7)
    reference = profile.build_reference({**_heavy_tailed(rng, 20_000), profile.SCORE: rng.beta(0.5, 50, 20_000)})
    current = {**_heavy_tailed(rng, 5_000), profile.SCORE: rng.beta(0.5, 20, 5_000)}
    report = drift.compare(reference, current)
    assert report["score_drift_level"] == "major" and report["drift_level"] == "major"
    assert report["drifted_features"] == []


def test_levels_order():
    assert verdict.at_least("major", "moderate") and not verdict.at_least("none", "moderate")


# --- alert budget and provenance -------------------------------------------------------------------


def test_daily_volume_is_measured_over_all_the_data_not_one_split():
    day = 86_400
    frame = lambda times: pd.DataFrame({TIME: np.asarray(times, dtype=float)})  # noqa: E731
    # Two days of 1,000 rows each; the validation split is 100 night rows over six hours.
    train = frame(np.linspace(0, 2 * day, 1_800))
    validation = frame(np.linspace(0.5 * day, 0.75 * day, 100))
    test = frame(np.linspace(1.5 * day, 2 * day, 100))
    assert rows_per_day(Splits(train, validation, test)) == pytest.approx(1_000, rel=1e-6)


def test_data_fingerprint_follows_content_not_index():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0, 1, 0]})
    same = frame.set_axis([10, 11, 12])
    changed = frame.assign(a=[1.0, 2.0, 3.5])
    assert data_fingerprint([frame]) == data_fingerprint([same])
    assert data_fingerprint([frame])["sha256"] != data_fingerprint([changed])["sha256"]
    assert data_fingerprint([frame, frame])["rows"] == 6


def test_manifest_records_provenance(trained_model):
    record = trained_model.manifest["provenance"]
    assert len(record["training_data"]["sha256"]) == 64 and record["training_data"]["rows"] > 0
    assert record["code"]["version"] == "0.1.0"
    assert record["code"]["git_commit"] is None or len(record["code"]["git_commit"]) == 40
    assert "dagster_run_id" in record


def test_data_fingerprint_takes_nested_columns_beyond_the_schema():
    # A nested Parquet column read by pandas holds dicts and lists, which pandas cannot hash.
    frame = pd.DataFrame({"Amount": [1.0, 2.0], "meta": [{"a": [1, 2]}, {"a": [3]}]})
    changed = frame.assign(meta=[{"a": [1, 2]}, {"a": [4]}])
    assert data_fingerprint([frame]) == data_fingerprint([frame.copy()])
    assert data_fingerprint([frame])["sha256"] != data_fingerprint([changed])["sha256"]
