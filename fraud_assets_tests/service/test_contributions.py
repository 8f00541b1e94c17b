"""The two contribution methods, in process (the HTTP tests cover the default one)."""

from __future__ import annotations

import numpy as np
import pytest

from fraud_assets.core.data.schema import FEATURE_COLUMNS


def _features(transactions):
    return np.array([[r[c] for c in FEATURE_COLUMNS] for r in transactions[:50]], dtype=np.float32)


def test_exact_is_the_models_own_contributions(models, transactions):
    from fraud_assets.service.predict import contributions

    model, features = models[0], _features(transactions)
    assert np.array_equal(
        contributions(model, features, "exact"), model.contributions(features)[:, :-1]
    )


def test_approx_contributions_add_up_to_the_same_margin(models, transactions):
    from fraud_assets.service.predict import contributions

    model, features = models[0], _features(transactions)
    approx = contributions(model, features, "approx")
    exact = model.contributions(features)
    assert approx.shape == exact[:, :-1].shape
    # Both attribute the margin minus the bias; only the split between features differs.
    np.testing.assert_allclose(approx.sum(axis=1), exact[:, :-1].sum(axis=1), atol=1e-4)
    assert not np.array_equal(approx, exact[:, :-1])


def test_unknown_method_is_refused_at_start(models, tmp_path):
    from fraud_assets.service import create_app
    from fraud_assets_tests.service.conftest import make_registry

    with pytest.raises(ValueError, match="contributions"):
        create_app(make_registry(tmp_path, models[:1], models[0]), contributions="shap")
