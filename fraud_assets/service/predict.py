"""Scoring one request: one probability call and one contributions call for all its rows."""

from __future__ import annotations

import json
import threading

import numpy as np
import orjson
import xgboost as xgb

from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.service.model_holder import ServingModel
from fraud_assets.service.schemas import ParsedRequest

TOP_CONTRIBUTIONS = 5
CONTRIBUTION_METHODS = ("exact", "approx")

# XGBoost's global configuration is per thread: the event loop and each worker thread set
# theirs once. With every core for one transaction, a busy host made a parallel region wait
# for a descheduled OpenMP thread: 10-100 ms instead of under 1 ms (docs/performance.md).
_thread_state = threading.local()


def _use_threads(threads: int) -> None:
    if getattr(_thread_state, "threads", None) != threads:
        xgb.set_config(nthread=threads)
        _thread_state.threads = threads


def contributions(model: FraudModel, features: np.ndarray, method: str) -> np.ndarray:
    """Per-feature contributions to the margin, bias column dropped.

    ``exact`` is XGBoost's TreeSHAP (``FraudModel.contributions``, the default). ``approx``
    is XGBoost's path-based (Saabas) attribution: the same sum, but the split of credit
    between features is an approximation.
    """
    return model.contributions(features, approx=method == "approx")[:, :-1]


def score(
    serving: ServingModel, parsed: ParsedRequest, *, threads: int, method: str
) -> tuple[bytes, int]:
    """The JSON response body and the number of transactions flagged."""
    _use_threads(threads)
    model = serving.model
    probabilities = model.predict_proba(parsed.features)
    # The same comparison as the batch path (float32 array against the threshold).
    is_fraud = probabilities >= model.threshold
    contribs = contributions(model, parsed.features, method)
    order = np.argsort(-np.abs(contribs), axis=1, kind="stable")[:, :TOP_CONTRIBUTIONS]
    top_values = np.take_along_axis(contribs, order, axis=1).tolist()
    top_names = serving.feature_names[order].tolist()
    version = model.version
    results = [
        {
            "transaction_id": transaction_id,
            "fraud_probability": probability,
            "is_fraud": fraud,
            "model_version": version,
            "top_contributions": [
                {"feature": name, "contribution": value} for name, value in zip(names, values, strict=True)
            ],
        }
        for transaction_id, probability, fraud, names, values in zip(
            parsed.ids, probabilities.tolist(), is_fraud.tolist(), top_names, top_values, strict=True
        )
    ]
    document = results[0] if parsed.single else results
    flagged = int(is_fraud.sum())
    try:
        return orjson.dumps(document), flagged
    except orjson.JSONEncodeError:
        # An id with a lone surrogate: legal as a JSON escape, not encodable as UTF-8, so
        # orjson refuses it. The standard library echoes it back escaped, as it came in.
        return json.dumps(document, separators=(",", ":")).encode(), flagged
