"""What a trained model's manifest says, whichever engine trained it: the calibration and the
threshold chosen on validation, the metrics on validation and test, the drift reference and the
booster's most used features. One policy for the single process and the Dask cluster."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sklearn
import xgboost as xgb

from fraud_assets.core.data import profile
from fraud_assets.core.data.schema import AMOUNT, TIME
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.calibration import calibration_report, fit_calibration
from fraud_assets.core.model.evaluation import classification_report, precision_recall_points
from fraud_assets.core.model.scored_rows import ScoredRows
from fraud_assets.core.model.threshold import choose_threshold

if TYPE_CHECKING:  # training imports this module
    from fraud_assets.core.model.training import StoppedBooster, TrainingConfig

# Binned held-out scores give the drift reference's score column this many drawn rows: its
# quantile grid has 1,001 points, which a sample of this size pins down well.
SCORE_REFERENCE_ROWS = 200_000


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


@dataclass(frozen=True)
class HeldOutEvidence:
    """What the threshold, the metrics and the drift reference are computed from, however the
    rows were read: labels and scores of validation and test (row by row, or binned), and the
    training features.

    Validation scores come from the model early stopping cut, before any refit on validation
    (out of sample, as the threshold and calibration need); test scores from the model shipped."""

    validation: ScoredRows
    test: ScoredRows
    rows_per_day: float
    # {"train" | "validation" | "test": {"rows": n, "frauds": n}}
    split_counts: dict
    # DRIFT_FEATURES of the training split (all of it, or a sample of it on a cluster).
    drift_columns: dict
    # Whether the shipped model was refitted on validation: its scores there are in-sample.
    refitted_on_validation: bool = False


def complete_model(
    model: FraudModel,
    stopped: StoppedBooster,
    config: TrainingConfig,
    evidence: HeldOutEvidence,
    *,
    provenance_document: dict,
    created: datetime,
    extra_training: dict | None = None,
    search: dict | None = None,
    training_seconds: float | None = None,
) -> FraudModel:
    """Calibrate and choose the threshold on validation, write the manifest: one policy for
    every engine. ``evidence`` holds the uncalibrated model's scores."""
    validation, test = evidence.validation, evidence.test
    calibration, calibration_losses = fit_calibration(validation.labels, validation.scores, seed=config.seed,
                                                      weights=validation.weights, folds=validation.folds)
    model.calibration = calibration
    # The threshold, the metrics and the drift reference all read the probabilities served.
    calibrated_validation, calibrated_test = validation.mapped(calibration.apply), test.mapped(calibration.apply)
    choice = choose_threshold(validation.labels, calibrated_validation.scores, config.threshold,
                              rows_per_day=evidence.rows_per_day, weights=validation.weights)
    model.threshold = choice.threshold
    # The score reference is the shipped model's scores on rows it never saw: scores on rows
    # it trained on are too confident, and another model's (the early-stopped one) are spread
    # differently, and either would make every production day look drifted. Validation, unless
    # the refit trained on it; then test, the later rows.
    reference = calibrated_test if evidence.refitted_on_validation else calibrated_validation
    drift_columns = {**evidence.drift_columns,
                     profile.SCORE: reference.sample_scores(SCORE_REFERENCE_ROWS, config.seed)}
    model.manifest = {
        "created_at": created.isoformat(),
        # All three splits: validation chose the stopping round and threshold, test the gate.
        "provenance": provenance_document,
        "algorithm": "xgboost",
        "libraries": {"xgboost": xgb.__version__, "scikit-learn": sklearn.__version__},
        "training": {
            **{k: v for k, v in asdict(config).items() if k != "threshold"},
            "scale_pos_weight": stopped.weight,
            "best_iteration": stopped.best_iteration,
            # The final booster's own fit (and its refit), and the whole training with any
            # search before it.
            "training_seconds": round(stopped.training_seconds, 3),
            **({"total_seconds": round(training_seconds, 3)} if training_seconds is not None else {}),
            **(extra_training or {}),
        },
        "threshold_policy": {
            **config.threshold.to_dict(),
            **({"rows_per_day": round(evidence.rows_per_day, 1)}
               if config.threshold.strategy == "alert_budget" else {}),
        },
        "data": evidence.split_counts,
        "metrics": {
            "validation": classification_report(validation.labels, calibrated_validation.scores, choice.threshold,
                                                validation.weights),
            "test": classification_report(test.labels, calibrated_test.scores, choice.threshold, test.weights),
        },
        "calibration": calibration_report(calibration, calibration_losses, test.labels, test.scores,
                                          calibrated_test.scores, test.weights),
        "pr_curve_test": (
            precision_recall_points(test.labels, calibrated_test.scores, choice.threshold, weights=test.weights)
            if test.frauds else []
        ),
        "top_features": _top_features(stopped.booster),
        "feature_importance": importance_by_input(stopped.booster),
        "drift_reference": profile.reference_to_dict(profile.build_reference(drift_columns)),
        **({"search": search} if search else {}),
    }
    return model
