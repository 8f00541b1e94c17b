"""Training the XGBoost fraud model: early stopping, imbalance, threshold and evaluation."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb

from fraud_assets.core.data import profile
from fraud_assets.core.data.features import Preprocessor
from fraud_assets.core.data.schema import AMOUNT, LABEL, SECONDS_PER_DAY, TIME, feature_matrix
from fraud_assets.core.data.splits import Splits
from fraud_assets.core.model.bundle import FraudModel, log_odds_correction_for
from fraud_assets.core.model.evaluation import classification_report, precision_recall_points
from fraud_assets.core.model.provenance import provenance
from fraud_assets.core.model.threshold import ThresholdPolicy, choose_threshold

log = logging.getLogger(__name__)

# Called after each boosting round with the rounds done and the most there can be (early
# stopping usually ends sooner): how training reports progress without knowing who asks.
OnRound = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainingConfig:
    n_estimators: int = 1000
    # Depth-4 trees at a step of 0.2 scored test AUPRC +0.014 on average over 24 generated
    # ULB-size datasets (better on 14) against depth 6 at 0.05, and early stopping keeps a
    # steadier number of them (43 to 284 against 13 to 452): prediction and explanations
    # cost per leaf (docs/performance.md).
    learning_rate: float = 0.2
    max_depth: int = 4
    min_child_weight: float = 1.0
    subsample: float = 0.9
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 256
    early_stopping_rounds: int = 50
    # None: the square root of the genuine/fraud ratio. The full ratio (~580) over-weights
    # noisy frauds; no weight at all starves the trees of positive gradient.
    scale_pos_weight: float | None = None
    seed: int = 0
    n_threads: int = 0
    threshold: ThresholdPolicy = field(default_factory=ThresholdPolicy)


def rows_per_day(splits: Splits) -> float:
    """Expected daily volume, measured over all the labelled data: its whole span smooths the
    day/night cycle that any one split (a few hours of a time split) would carry."""
    times = pd.concat([part[TIME] for part in (splits.train, splits.validation, splits.test)])
    rows = len(times)
    if rows < 2:
        return float(max(rows, 1))
    span_days = max(float(times.max() - times.min()) / SECONDS_PER_DAY, 1 / 24)
    return rows / span_days


def _top_features(booster: xgb.Booster, limit: int = 10) -> list[dict]:
    gains = booster.get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    ranked = sorted(gains.items(), key=lambda item: -item[1])[:limit]
    return [{"feature": name, "gain_share": round(gain / total, 4)} for name, gain in ranked]


# The model's derived features and the input column each is computed from, so importance can
# be read against the input columns that drift is measured on.
_INPUT_OF = {"log_amount": AMOUNT, "hour_sin": TIME, "hour_cos": TIME}


def importance_by_input(booster: xgb.Booster) -> dict[str, float]:
    """Each input column's share of the model's total gain."""
    gains = booster.get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    shares: dict[str, float] = {}
    for name, gain in gains.items():
        column = _INPUT_OF.get(name, name)
        shares[column] = shares.get(column, 0.0) + gain / total
    return {name: round(share, 6) for name, share in sorted(shares.items(), key=lambda item: -item[1])}


class _RoundReporter(xgb.callback.TrainingCallback):
    """Passes each finished boosting round to ``on_round`` and, every so often, to the log."""

    LOG_EVERY = 25

    def __init__(self, total: int, on_round: OnRound | None):
        super().__init__()
        self._total, self._on_round = total, on_round

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        done = epoch + 1
        if done % self.LOG_EVERY == 0:
            scores = evals_log.get("validation", {}).get("aucpr", [])
            log.debug("boosting round %d of at most %d: validation AUPRC %.4f",
                      done, self._total, scores[-1] if scores else float("nan"))
        if self._on_round is not None:
            self._on_round(done, self._total)
        return False  # never asks to stop: early stopping decides


def make_version(booster_bytes: bytes, when: datetime) -> str:
    digest = hashlib.sha256(booster_bytes).hexdigest()[:8]
    return f"xgb-{when:%Y%m%dT%H%M%SZ}-{digest}"


def train_fraud_model(
    splits: Splits,
    preprocessor: Preprocessor,
    config: TrainingConfig = TrainingConfig(),
    *,
    run_id: str | None = None,
    on_round: OnRound | None = None,
) -> FraudModel:
    """Fit on train, stop early and pick the threshold on validation, report on test.

    ``run_id``: the orchestrator's run that trains it (Dagster's), recorded in the manifest.
    ``on_round(done, most)``: called after each boosting round.
    """
    started = time.perf_counter()
    y_train = splits.train[LABEL].to_numpy()
    y_valid = splits.validation[LABEL].to_numpy()
    if y_train.sum() == 0 or y_valid.sum() == 0:
        raise ValueError(
            "training and validation splits both need frauds "
            f"(train: {int(y_train.sum())}, validation: {int(y_valid.sum())})"
        )
    negatives, positives = len(y_train) - y_train.sum(), y_train.sum()
    weight = config.scale_pos_weight or math.sqrt(negatives / positives)

    log.info("training on %d rows (%d frauds), stopping on %d validation rows; positive weight %.1f",
             len(y_train), int(positives), len(y_valid), weight)
    names = list(preprocessor.feature_names)
    train_matrix = xgb.QuantileDMatrix(
        preprocessor.transform_frame(splits.train), label=y_train, feature_names=names, max_bin=config.max_bin
    )
    valid_matrix = xgb.QuantileDMatrix(
        preprocessor.transform_frame(splits.validation), label=y_valid, feature_names=names, ref=train_matrix
    )
    params = {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "eta": config.learning_rate,
        "max_depth": config.max_depth,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "lambda": config.reg_lambda,
        "max_bin": config.max_bin,
        "scale_pos_weight": weight,
        "seed": config.seed,
        "nthread": config.n_threads,
    }
    booster = xgb.train(
        params,
        train_matrix,
        num_boost_round=config.n_estimators,
        evals=[(valid_matrix, "validation")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
        callbacks=[_RoundReporter(config.n_estimators, on_round)],
    )
    # Keep only the trees up to the best validation round: the deployed model is the one
    # that early stopping chose, and smaller models score faster.
    best_iteration = int(booster.best_iteration)
    best_score, booster_rounds = float(booster.best_score), booster.num_boosted_rounds()
    booster = booster[: best_iteration + 1]
    training_seconds = time.perf_counter() - started
    log.info("early stopping kept %d of %d rounds (best validation AUPRC %.4f) after %.1f s",
             best_iteration + 1, booster_rounds, best_score, training_seconds)

    created = datetime.now(UTC)
    booster_bytes = bytes(booster.save_raw("ubj"))
    model = FraudModel(
        booster_bytes=booster_bytes,
        version=make_version(booster_bytes, created),
        preprocessor=preprocessor,
        threshold=0.5,
        log_odds_correction=log_odds_correction_for(weight),
    )
    valid_scores = model.predict_proba(feature_matrix(splits.validation))
    daily_volume = rows_per_day(splits)
    choice = choose_threshold(y_valid, valid_scores, config.threshold, rows_per_day=daily_volume)
    model.threshold = choice.threshold

    y_test = splits.test[LABEL].to_numpy()
    test_scores = model.predict_proba(feature_matrix(splits.test))
    model.manifest = {
        "created_at": created.isoformat(),
        # All three splits: validation chose the stopping round and threshold, test the gate.
        "provenance": provenance(
            (splits.train, splits.validation, splits.test), run_id=run_id
        ),
        "algorithm": "xgboost",
        "libraries": {"xgboost": xgb.__version__, "scikit-learn": sklearn.__version__},
        "training": {
            **{k: v for k, v in asdict(config).items() if k != "threshold"},
            "scale_pos_weight": weight,
            "best_iteration": best_iteration,
            "training_seconds": round(training_seconds, 3),
        },
        "threshold_policy": {
            **config.threshold.to_dict(),
            **({"rows_per_day": round(daily_volume, 1)} if config.threshold.strategy == "alert_budget" else {}),
        },
        "data": {
            name: {"rows": len(part), "frauds": int(part[LABEL].sum())}
            for name, part in (("train", splits.train), ("validation", splits.validation), ("test", splits.test))
        },
        "metrics": {
            "validation": classification_report(y_valid, valid_scores, choice.threshold),
            "test": classification_report(y_test, test_scores, choice.threshold),
        },
        "pr_curve_test": (
            precision_recall_points(y_test, test_scores, choice.threshold) if y_test.sum() else []
        ),
        "top_features": _top_features(booster),
        "feature_importance": importance_by_input(booster),
        "drift_reference": profile.reference_to_dict(
            build_drift_reference(splits.train, valid_scores)
        ),
    }
    return model


def build_drift_reference(train: pd.DataFrame, held_out_scores: np.ndarray) -> dict:
    """Features from the training split; scores from held-out rows, as training-set scores are
    optimistic and would make every production day look drifted."""
    columns = {name: train[name].to_numpy() for name in profile.DRIFT_FEATURES}
    columns[profile.SCORE] = held_out_scores
    return profile.build_reference(columns)
