"""The scoring predictor that reaches XGBoost's C library without the xgboost package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xgboost as xgb

from fraud_assets.core.model.xgboost_runtime import NativeBooster, XGBoostRuntimeError
from fraud_assets_tests.import_probe import run_fraud


@pytest.fixture(scope="module")
def features(trained_model, labelled_frame) -> np.ndarray:
    raw = labelled_frame.loc[:, list(trained_model.preprocessor.input_columns)].to_numpy(np.float32)
    matrix = trained_model.preprocessor.transform(raw)
    matrix[::97, 3] = np.nan  # missing values take the trees' default branches
    return matrix


def test_margins_equal_the_packages_inplace_predict_bit_for_bit(trained_model, features):
    package = xgb.Booster()
    package.load_model(bytearray(trained_model.booster_bytes))
    expected = package.inplace_predict(features, predict_type="margin")

    native = NativeBooster(trained_model.booster_bytes).predict_margin(features)

    assert native.dtype == np.float32
    np.testing.assert_array_equal(native, expected)


def test_json_export_is_the_packages(trained_model):
    package = xgb.Booster()
    package.load_model(bytearray(trained_model.booster_bytes))

    exported = NativeBooster(trained_model.booster_bytes).to_json()

    assert exported == bytes(package.save_raw("json"))
    assert exported.startswith(b"{")


def test_non_contiguous_and_float64_input_gives_the_same_margins(trained_model, features):
    booster = NativeBooster(trained_model.booster_bytes)
    expected = booster.predict_margin(features)

    wide = np.hstack([features, features]).astype(np.float64)[:, : features.shape[1]]

    np.testing.assert_array_equal(booster.predict_margin(wide), expected)


def test_result_is_a_copy_that_the_next_call_does_not_overwrite(trained_model, features):
    booster = NativeBooster(trained_model.booster_bytes)
    first = booster.predict_margin(features[:100])
    kept = first.copy()
    booster.predict_margin(features[100:200])
    np.testing.assert_array_equal(first, kept)


def test_empty_input_and_wrong_width(trained_model, features):
    booster = NativeBooster(trained_model.booster_bytes)
    assert booster.predict_margin(features[:0]).shape == (0,)
    with pytest.raises(ValueError, match=f"{features.shape[1]} feature columns, got shape"):
        booster.predict_margin(features[:, :5])


def test_bytes_that_are_not_a_model_raise_xgboosts_own_message():
    with pytest.raises(XGBoostRuntimeError, match="json"):
        NativeBooster(b"not a model")


def test_scoring_path_does_not_import_the_heavy_libraries(model_dir, tmp_path):
    """`fraud score` owes its start-up time to this: pandas, scikit-learn, SciPy and the
    xgboost package (which imports the other three) stay out of the scoring process."""
    source = tmp_path / "batch.csv"
    subprocess.run(
        [sys.executable, "-c",
         "from fraud_assets.synthetic.generate import generate_transactions as g; "
         f"g(1000, seed=3, labels=False).to_csv({str(source)!r}, index=False)"],
        check=True,
    )
    _, loaded = run_fraud(
        ["score", "--model-dir", str(model_dir), "--input", str(source), "--output", str(tmp_path / "out.csv")]
    )
    assert loaded == []
    assert (tmp_path / "out.csv").stat().st_size > 0
