"""Contribution tables against XGBoost's own ``pred_contribs`` and against the Shapley formula."""

from __future__ import annotations

import itertools
import json
import logging
import math

import numpy as np
import pytest
import xgboost as xgb

from fraud_assets.core.model import tree_shap
from fraud_assets.core.model.tree_shap import TreeShapTables, UnsupportedModel, leaf_shapley_values


def _brute_force_shapley(value: float, zero: np.ndarray, one: np.ndarray) -> np.ndarray:
    """The definition, coalition by coalition, for g(S) = v * prod(o in S) * prod(z not in S)."""
    d = len(zero)

    def game(coalition: set[int]) -> float:
        return value * math.prod(one[j] if j in coalition else zero[j] for j in range(d))

    result = np.zeros(d)
    for k in range(d):
        others = [j for j in range(d) if j != k]
        for size in range(d):
            weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
            for coalition in itertools.combinations(others, size):
                result[k] += weight * (game({*coalition, k}) - game(set(coalition)))
    return result


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_leaf_values_are_the_shapley_values_of_the_leaf_game(width):
    rng = np.random.default_rng(width)
    values = rng.normal(size=3)
    zeros = rng.uniform(0.05, 0.95, size=(3, width))
    tables = leaf_shapley_values(values, zeros)
    assert tables.shape == (3, 2**width, width)
    for leaf in range(3):
        for case in range(2**width):
            ones = np.array([(case >> j) & 1 for j in range(width)], dtype=float)
            expected = _brute_force_shapley(values[leaf], zeros[leaf], ones)
            np.testing.assert_allclose(tables[leaf, case], expected, rtol=1e-12, atol=1e-12)


def _data(rows: int = 3_000, features: int = 12, missing: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    logit = x[:, 0] * x[:, 1] + np.sin(2 * x[:, 2]) + (x[:, 3] > 0.5) * x[:, 4] - 0.3 * x[:, 5] ** 2
    y = (logit + rng.normal(scale=0.5, size=rows) > 0).astype(np.float32)
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    return x, y


def _train(params: dict, rounds: int, missing: float = 0.0, **data_args) -> xgb.Booster:
    x, y = _data(missing=missing, **data_args)
    base = {"objective": "binary:logistic", "seed": 0, "nthread": 2}
    return xgb.train({**base, **params}, xgb.DMatrix(x, label=y), num_boost_round=rounds)


def _assert_matches_xgboost(booster: xgb.Booster, x: np.ndarray) -> None:
    tables = TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))
    expected = booster.predict(xgb.DMatrix(x), pred_contribs=True)[:, :-1]
    got = tables.shap_values(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5 * max(1.0, np.abs(expected).max()), rtol=0)
    # Not vacuous: rows and features really differ.
    assert np.abs(expected).max() > 0.1
    assert len(np.unique(np.round(expected, 4))) > 20
    assert (np.abs(expected).max(axis=0) > 0).sum() >= 3


@pytest.mark.parametrize(
    ("params", "rounds"),
    [
        pytest.param({"max_depth": 1}, 30, id="stumps"),
        pytest.param({"max_depth": 4, "eta": 0.2}, 60, id="default-shape"),
        pytest.param({"max_depth": 6, "eta": 0.1, "subsample": 0.8}, 40, id="depth-6"),
        # Paths longer than a group's eight splits: single-leaf groups, two-byte case numbers.
        pytest.param({"max_depth": 11, "min_child_weight": 0, "eta": 0.3}, 4, id="depth-11"),
        pytest.param({"max_depth": 5, "colsample_bynode": 0.3}, 30, id="features-repeat-on-paths"),
        pytest.param({"max_depth": 3, "num_parallel_tree": 3, "subsample": 0.7}, 10, id="forest"),
        pytest.param({"max_depth": 4, "grow_policy": "lossguide", "max_leaves": 12}, 30, id="lossguide"),
    ],
)
def test_tables_reproduce_xgboost_pred_contribs(params, rounds):
    booster = _train(params, rounds)
    x, _ = _data(rows=400, seed=7)
    _assert_matches_xgboost(booster, x)


def test_missing_values_follow_each_splits_default_direction():
    # Trained with missing values, so the learned default directions differ between splits.
    booster = _train({"max_depth": 4}, 30, missing=0.2)
    x, _ = _data(rows=400, seed=8, missing=0.3)
    tree_defaults = {
        d for tree in json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
        for d in tree["default_left"]
    }
    assert tree_defaults == {0, 1}
    _assert_matches_xgboost(booster, x)


def test_trees_that_are_a_single_leaf_add_nothing():
    booster = _train({"max_depth": 3}, 10)
    x, y = _data()
    # More rounds with an impossible gain: every new tree is a lone leaf.
    grown = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "gamma": 1e9},
        xgb.DMatrix(x, label=y), num_boost_round=5, xgb_model=booster,
    )
    assert grown.num_boosted_rounds() == 15
    _assert_matches_xgboost(grown, _data(rows=200, seed=9)[0])


def test_one_call_for_a_single_row_equals_the_batch():
    booster = _train({"max_depth": 4}, 20)
    tables = TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))
    x, _ = _data(rows=50, seed=3)
    batch = tables.shap_values(x)
    for row in (0, 17, 49):
        np.testing.assert_array_equal(tables.shap_values(x[row : row + 1])[0], batch[row])


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"objective": "multi:softprob", "num_class": 3}, "more than one output"),
        ({"booster": "dart", "rate_drop": 0.1}, "dart"),
    ],
)
def test_models_the_tables_cannot_express_are_refused(params, reason):
    x, y = _data()
    if "num_class" in params:
        y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    booster = xgb.train({"objective": "binary:logistic", **params}, xgb.DMatrix(x, label=y), 3)
    with pytest.raises(UnsupportedModel, match=reason):
        TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))


def test_categorical_splits_are_refused():
    import pandas as pd

    x, y = _data()
    frame = pd.DataFrame({"colour": pd.Categorical(np.where(x[:, 0] > 0, "red", "blue")), "v": x[:, 1]})
    matrix = xgb.DMatrix(frame, label=y, enable_categorical=True)
    booster = xgb.train({"objective": "binary:logistic", "max_cat_to_onehot": 1}, matrix, 3)
    with pytest.raises(UnsupportedModel, match="categorical"):
        TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))


def test_a_split_with_zero_cover_is_refused():
    # XGBoost's own TreeSHAP fails on such a model (a tree refreshed on other data).
    document = json.loads(_train({"max_depth": 3}, 5).save_raw("json"))
    document["learner"]["gradient_booster"]["model"]["trees"][2]["sum_hessian"][0] = 0.0
    with pytest.raises(UnsupportedModel, match="zero cover"):
        TreeShapTables.from_xgboost_json(document)


def test_tables_too_large_are_refused(monkeypatch):
    booster = _train({"max_depth": 4}, 20)
    monkeypatch.setattr(tree_shap, "MAX_TABLE_ENTRIES", 1_000)
    with pytest.raises(UnsupportedModel, match="entries"):
        TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))


# FraudModel: the tables serve only after they reproduce XGBoost on the loaded model.


def _raw_rows(batch_frame, rows: int = 200) -> np.ndarray:
    from fraud_assets.core.data.schema import feature_matrix

    return feature_matrix(batch_frame.head(rows))


def test_fraud_model_contributions_are_xgboosts(trained_model, batch_frame):
    raw = _raw_rows(batch_frame)
    got = trained_model.contributions(raw)
    expected = trained_model._xgboost_contributions(trained_model.preprocessor.transform(raw), approx=False)
    assert trained_model._exact_contributions is not None  # the tables served
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sum(axis=1), trained_model.margin(raw), atol=1e-4)


def _fresh_copy(model):
    from dataclasses import replace

    return replace(model)  # cached properties stay behind with the original


@pytest.mark.parametrize("wrong", [0.0, np.nan], ids=["zeros", "nan"])
def test_tables_that_disagree_with_xgboost_are_not_used(trained_model, batch_frame, monkeypatch, caplog, wrong):
    model = _fresh_copy(trained_model)
    monkeypatch.setattr(TreeShapTables, "shap_values", lambda self, x: np.full((len(x), self.num_features), wrong))
    raw = _raw_rows(batch_frame, 20)
    with caplog.at_level(logging.WARNING, logger="fraud_assets.core.model.bundle"):
        got = model.contributions(raw)
    assert model._exact_contributions is None
    assert "differ from XGBoost's" in caplog.text
    expected = model._xgboost_contributions(model.preprocessor.transform(raw), approx=False)
    np.testing.assert_array_equal(got, expected)
    assert np.abs(got[:, :-1]).max() > 0


def test_an_unsupported_model_falls_back_to_xgboost(trained_model, batch_frame, monkeypatch):
    model = _fresh_copy(trained_model)

    def refuse(document):
        raise UnsupportedModel("for this test")

    monkeypatch.setattr(TreeShapTables, "from_xgboost_json", staticmethod(refuse))
    raw = _raw_rows(batch_frame, 20)
    expected = model._xgboost_contributions(model.preprocessor.transform(raw), approx=False)
    np.testing.assert_array_equal(model.contributions(raw), expected)
    assert model._exact_contributions is None


def test_rows_scored_in_several_passes_get_the_same_values(monkeypatch):
    booster = _train({"max_depth": 4}, 20)
    tables = TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))
    x, _ = _data(rows=300, seed=4)
    whole = tables.shap_values(x)
    monkeypatch.setattr(tree_shap, "_ELEMENTS_PER_PASS", len(tables.slot_group) * 7)  # 7 rows a pass
    np.testing.assert_array_equal(tables.shap_values(x), whole)


def test_a_model_without_splits_is_refused():
    x, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "gamma": 1e9}, xgb.DMatrix(x, label=y), 3)
    with pytest.raises(UnsupportedModel, match="no splits"):
        TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))
