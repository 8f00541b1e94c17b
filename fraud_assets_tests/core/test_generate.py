"""The synthetic generator must look like the ULB file where the platform depends on it.

Targets come from the published statistics of ``creditcard.csv``; tolerances leave room for
sampling noise on a few hundred frauds, and were checked on the fixed seeds used here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy.stats import kurtosis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from fraud_assets.core.data.schema import (
    AMOUNT,
    FEATURE_COLUMNS,
    LABEL,
    LABELLED_COLUMNS,
    PCA_COLUMNS,
    SECONDS_PER_DAY,
    TIME,
)
from fraud_assets.synthetic.generate import DRIFT_FEATURES, generate_transactions

ROWS = 200_000
SEED = 2024

# Published ULB class-conditional (mean, std) of the most telling features.
ULB_GENUINE = {
    "V4": (-0.008, 1.399),
    "V10": (0.010, 1.044),
    "V12": (0.011, 0.946),
    "V14": (0.012, 0.897),
    "V17": (0.012, 0.749),
}
ULB_FRAUD = {
    "V4": (4.542, 2.873),
    "V10": (-5.677, 4.897),
    "V12": (-6.259, 4.654),
    "V14": (-6.972, 4.279),
    "V17": (-6.666, 6.971),
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_transactions(ROWS, seed=SEED)


@pytest.fixture(scope="module")
def genuine(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame[LABEL] == 0]


@pytest.fixture(scope="module")
def fraud(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame[LABEL] == 1]


def hour_of_day(frame: pd.DataFrame) -> np.ndarray:
    return ((frame[TIME].to_numpy() % SECONDS_PER_DAY) // 3600).astype(int)


def population_stability_index(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI over the reference deciles; empty bins get a tiny share so the log stays finite."""
    edges = np.quantile(reference, np.linspace(0, 1, 11)[1:-1])

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=10)
        return np.clip(counts / len(values), 1e-6, None)

    expected, actual = shares(reference), shares(current)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


# --------------------------------------------------------------------------- shape and schema


def test_columns_dtypes_and_order(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(LABELLED_COLUMNS)
    assert len(frame) == ROWS
    for column in FEATURE_COLUMNS:
        assert frame[column].dtype == np.float64, column
    assert frame[LABEL].dtype == np.int64
    assert set(np.unique(frame[LABEL])) == {0, 1}
    assert frame[TIME].is_monotonic_increasing
    assert not frame.isna().any().any()


def test_time_is_whole_seconds_inside_the_window() -> None:
    window = generate_transactions(20_000, seed=1, start_day=5, n_days=0.5)
    times = window[TIME].to_numpy()
    assert times.min() >= 5 * SECONDS_PER_DAY
    assert times.max() < 5.5 * SECONDS_PER_DAY
    np.testing.assert_array_equal(times, np.floor(times))


def test_amounts_are_non_negative_cents(frame: pd.DataFrame) -> None:
    amounts = frame[AMOUNT].to_numpy()
    assert amounts.min() >= 0.0
    np.testing.assert_allclose(amounts * 100, np.round(amounts * 100), atol=1e-6)


def test_labels_false_drops_the_class_column() -> None:
    unlabelled = generate_transactions(1_000, seed=3, labels=False)
    labelled = generate_transactions(1_000, seed=3)
    assert list(unlabelled.columns) == list(FEATURE_COLUMNS)
    pd.testing.assert_frame_equal(unlabelled, labelled.drop(columns=[LABEL]))


def test_zero_rows_keep_the_schema() -> None:
    empty = generate_transactions(0)
    assert list(empty.columns) == list(LABELLED_COLUMNS)
    assert len(empty) == 0


@pytest.mark.parametrize(
    "arguments",
    [
        {"n_samples": -1},
        {"n_samples": 10, "n_days": 0.0},
        {"n_samples": 10, "drift": -0.1},
        {"n_samples": 10, "fraud_rate": 1.5},
        {"n_samples": 10, "start_day": -1},
    ],
)
def test_rejects_bad_arguments(arguments: dict) -> None:
    with pytest.raises(ValueError):
        generate_transactions(**arguments)


# --------------------------------------------------------------------------- determinism


def test_same_arguments_give_the_same_frame() -> None:
    first = generate_transactions(5_000, seed=9, start_day=2, drift=0.3)
    second = generate_transactions(5_000, seed=9, start_day=2, drift=0.3)
    pd.testing.assert_frame_equal(first, second)


def test_seed_and_start_day_change_the_rows() -> None:
    base = generate_transactions(5_000, seed=9, start_day=2)
    other_seed = generate_transactions(5_000, seed=10, start_day=2)
    next_day = generate_transactions(5_000, seed=9, start_day=3)
    assert not np.allclose(base["V1"], other_seed["V1"])
    assert not np.allclose(base["V1"], next_day["V1"])


# --------------------------------------------------------------------------- ULB statistics


def test_prevalence_is_near_the_ulb_rate(frame: pd.DataFrame) -> None:
    # 200k rows at 0.1727 % give about 345 frauds, binomial sd about 19.
    assert 0.0014 < frame[LABEL].mean() < 0.0021


def test_fraud_rate_parameter_sets_prevalence() -> None:
    labels = generate_transactions(50_000, seed=4, fraud_rate=0.02)[LABEL]
    assert 0.018 < labels.mean() < 0.022


@pytest.mark.parametrize("feature", sorted(ULB_GENUINE))
def test_genuine_moments_match_ulb(genuine: pd.DataFrame, feature: str) -> None:
    mean, std = ULB_GENUINE[feature]
    assert genuine[feature].mean() == pytest.approx(mean, abs=0.03)
    assert genuine[feature].std() == pytest.approx(std, rel=0.05)


@pytest.mark.parametrize("feature", sorted(ULB_FRAUD))
def test_fraud_moments_match_ulb(fraud: pd.DataFrame, feature: str) -> None:
    mean, std = ULB_FRAUD[feature]
    assert fraud[feature].mean() == pytest.approx(mean, rel=0.15)
    assert fraud[feature].std() == pytest.approx(std, rel=0.25)


def test_overall_components_are_centred(frame: pd.DataFrame) -> None:
    means = frame[list(PCA_COLUMNS)].mean()
    assert means.abs().max() < 0.05


@pytest.mark.parametrize("feature", ["V8", "V21", "V27", "V5"])
def test_variance_only_signals(genuine: pd.DataFrame, fraud: pd.DataFrame, feature: str) -> None:
    # Fraud spreads these far wider (ULB: std ratio 3.4-5.9) than their mean moves.
    fraud_std = fraud[feature].std()
    assert fraud_std > 2.5 * genuine[feature].std()
    assert fraud_std > abs(fraud[feature].mean() - genuine[feature].mean())


def test_genuine_rows_are_heavy_tailed(genuine: pd.DataFrame, fraud: pd.DataFrame) -> None:
    assert kurtosis(genuine["V1"], fisher=False) > 10
    assert kurtosis(genuine["V5"], fisher=False) > 50
    # The most extreme values are genuine, as in the real file.
    for feature in ("V5", "V8", "V20", "V28"):
        assert genuine[feature].abs().max() > fraud[feature].abs().max(), feature


def test_fraud_amounts_are_bimodal(fraud: pd.DataFrame) -> None:
    amounts = fraud[AMOUNT]
    assert amounts.quantile(0.25) <= 1.0
    assert (amounts == 1.0).mean() > 0.10
    assert (amounts == 0.0).any()
    assert 5.0 < amounts.median() < 20.0
    assert 70.0 < amounts.mean() < 180.0
    assert 800.0 < amounts.max() <= 2_200.0


def test_genuine_amounts_match_ulb(genuine: pd.DataFrame) -> None:
    amounts = genuine[AMOUNT]
    assert 19.0 < amounts.median() < 25.0
    assert 75.0 < amounts.mean() < 100.0
    assert 4.5 < amounts.quantile(0.25) < 7.0
    assert 65.0 < amounts.quantile(0.75) < 90.0
    assert amounts.max() > 2_000.0


def test_night_is_quiet_but_fraud_heavy(frame: pd.DataFrame) -> None:
    hours = hour_of_day(frame)
    night = (hours >= 1) & (hours < 7)
    labels = frame[LABEL].to_numpy()
    assert night.mean() < 0.12  # 6 of 24 hours would be 25 % without a daily cycle
    assert labels[night].mean() > 1.8 * labels[~night].mean()


# --------------------------------------------------------------------------- drift


def test_drift_is_detectable_and_its_absence_is_not() -> None:
    reference = generate_transactions(20_000, seed=1, start_day=0)
    steady = generate_transactions(20_000, seed=1, start_day=1, drift=0.0)
    drifted = generate_transactions(20_000, seed=1, start_day=1, drift=0.5)
    for feature in FEATURE_COLUMNS[1:]:
        assert population_stability_index(reference[feature], steady[feature]) < 0.02, feature
    for feature in DRIFT_FEATURES:
        assert population_stability_index(reference[feature], drifted[feature]) > 0.25, feature
    assert drifted[AMOUNT].median() > 1.3 * reference[AMOUNT].median()


# --------------------------------------------------------------------------- reference model


def model_matrix(frame: pd.DataFrame) -> np.ndarray:
    angle = (frame[TIME].to_numpy() % SECONDS_PER_DAY) * (2 * np.pi / SECONDS_PER_DAY)
    return np.column_stack(
        [
            frame[list(PCA_COLUMNS)].to_numpy(),
            np.log1p(frame[AMOUNT].to_numpy()),
            np.sin(angle),
            np.cos(angle),
        ]
    )


def test_reference_model_scores_like_the_real_file() -> None:
    # Real file, out-of-time split: ROC-AUC about 0.985-0.992 and AP about 0.85. Data whose
    # frauds were all easy would give 1.0; the hard frauds must keep it below that.
    rows = 300_000
    data = generate_transactions(rows, seed=0)
    features, labels = model_matrix(data), data[LABEL].to_numpy()
    train_end, valid_end = int(0.6 * rows), int(0.8 * rows)  # rows are in time order
    model = xgb.XGBClassifier(
        n_estimators=200,
        max_depth=5,
        learning_rate=0.1,
        tree_method="hist",
        early_stopping_rounds=30,
        eval_metric="aucpr",
        n_jobs=2,
        random_state=0,
    )
    model.fit(
        features[:train_end],
        labels[:train_end],
        eval_set=[(features[train_end:valid_end], labels[train_end:valid_end])],
        verbose=False,
    )
    test_labels = labels[valid_end:]
    scores = model.predict_proba(features[valid_end:])[:, 1]
    tree_ap = average_precision_score(test_labels, scores)
    assert test_labels.sum() > 60
    assert 0.70 <= tree_ap <= 0.92
    assert 0.965 <= roc_auc_score(test_labels, scores) <= 0.995

    # Variance-only signals and per-pattern feature blocks are invisible to a linear model.
    scaler = StandardScaler().fit(features[:train_end])
    linear = LogisticRegression(max_iter=1_000).fit(
        scaler.transform(features[:train_end]), labels[:train_end]
    )
    linear_scores = linear.predict_proba(scaler.transform(features[valid_end:]))[:, 1]
    assert average_precision_score(test_labels, linear_scores) < tree_ap
