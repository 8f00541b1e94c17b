"""Training the XGBoost fraud model: early stopping, imbalance, threshold and evaluation."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import xgboost as xgb

from fraud_assets.core.data import profile
from fraud_assets.core.data.features import Preprocessor
from fraud_assets.core.data.schema import LABEL, SECONDS_PER_DAY, TIME, feature_matrix
from fraud_assets.core.data.splits import Splits
from fraud_assets.core.model.bundle import FraudModel, log_odds_correction_for
from fraud_assets.core.model.calibration import fit_calibration, sigmoid
from fraud_assets.core.model.manifest import HeldOutEvidence, complete_model
from fraud_assets.core.model.provenance import provenance
from fraud_assets.core.model.scored_rows import ScoredRows
from fraud_assets.core.model.search import DEFAULT_MAX_TRIALS, Fit, Score, SearchOutcome, search_configuration
from fraud_assets.core.model.threshold import ThresholdPolicy

log = logging.getLogger(__name__)

# Called after each boosting round with the rounds done and the most there can be (early
# stopping usually ends sooner): how training reports progress without knowing who asks.
OnRound = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainingConfig:
    n_estimators: int = 1000
    # Measured on generated data whose true fraud probability is known (benchmarks/
    # model_quality.py, docs/model-quality.md): against depth 4 at 0.2 with fraud up-weighted
    # by the square root of the class ratio and stopping on AUPRC, shallow trees at a small
    # step, unweighted and stopping on log-loss reached a higher share of the best achievable
    # average precision on every variant (median 0.855 against 0.814) and a lower log-loss.
    # With few frauds, up-weighting mostly amplifies their noise.
    learning_rate: float = 0.05
    max_depth: int = 3
    min_child_weight: float = 1.0
    # Each boosting round grows this many trees on different row samples and averages them
    # (XGBoost's boosted random forest), so no round rests on one draw of a few hundred frauds.
    # On 22 generated datasets of two generator families (docs/model-quality.md), 3 trees on
    # 70 % samples against one tree on 90 %: AP / best higher on 20 (median 0.897 -> 0.909),
    # log-loss lower on 20; one tree on 70 % alone gained nothing. Each round costs three trees
    # to fit, score and explain.
    parallel_trees: int = 3
    subsample: float = 0.7
    colsample_bytree: float = 0.8
    # 10 scored a little better on generated data (docs/model-quality.md) but early stopping
    # then keeps up to 2.3 times the trees, which every score and explanation pays for.
    reg_lambda: float = 1.0
    max_bin: int = 256
    early_stopping_rounds: int = 50
    # What early stopping watches on validation: "logloss" or "aucpr".
    eval_metric: str = "logloss"
    # "none" (weight 1) or "sqrt_ratio" (the square root of the genuine/fraud ratio); a
    # scale_pos_weight set explicitly overrides both, and the search then leaves it alone.
    positive_weighting: str = "none"
    scale_pos_weight: float | None = None
    seed: int = 0
    n_threads: int = 0
    threshold: ThresholdPolicy = field(default_factory=ThresholdPolicy)
    # Seconds for the hyperparameter search (core/model/search.py); 0 trains exactly this
    # configuration. The CLI and the asset default to FRAUD_SEARCH_BUDGET_SECONDS.
    search_budget_seconds: float = 0.0
    search_trials: int = DEFAULT_MAX_TRIALS
    # Once early stopping has chosen the rounds on validation, fit them again on train and
    # validation together: a third more frauds to learn from. On the six generated variants of
    # benchmarks/model_quality.py this raised AP / best on every one (median 0.855 -> 0.865)
    # and lowered log-loss on five; the test split stays unseen, so the gate is still honest.
    refit_on_validation: bool = True


def rows_per_day(splits: Splits) -> float:
    """Expected daily volume, measured over all the labelled data: its whole span smooths the
    day/night cycle that any one split (a few hours of a time split) would carry."""
    times = pd.concat([part[TIME] for part in (splits.train, splits.validation, splits.test)])
    return daily_volume(len(times), float(times.min()) if len(times) else 0.0,
                        float(times.max()) if len(times) else 0.0)


def daily_volume(rows: int, first_time: float, last_time: float) -> float:
    """Rows per day over a span of ``Time`` values (at least an hour, so a short sample does
    not claim an absurd volume)."""
    if rows < 2:
        return float(max(rows, 1))
    span_days = max((last_time - first_time) / SECONDS_PER_DAY, 1 / 24)
    return rows / span_days


class _RoundReporter(xgb.callback.TrainingCallback):
    """Passes each finished boosting round to ``on_round`` and, every so often, to the log."""

    LOG_EVERY = 25

    def __init__(self, total: int, on_round: OnRound | None):
        super().__init__()
        self._total, self._on_round = total, on_round

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        done = epoch + 1
        if done % self.LOG_EVERY == 0:
            for metric, scores in evals_log.get("validation", {}).items():
                log.debug("boosting round %d of at most %d: validation %s %.4f",
                          done, self._total, metric, scores[-1] if scores else float("nan"))
        if self._on_round is not None:
            self._on_round(done, self._total)
        return False  # never asks to stop: early stopping decides


def make_version(booster_bytes: bytes, when: datetime) -> str:
    digest = hashlib.sha256(booster_bytes).hexdigest()[:8]
    return f"xgb-{when:%Y%m%dT%H%M%SZ}-{digest}"


POSITIVE_WEIGHTINGS = ("none", "sqrt_ratio")


def positive_weight(config: TrainingConfig, negatives: int, positives: int) -> float:
    """The weight of a fraud against a genuine row: the configured one, else what the
    weighting rule gives for the training split's class counts."""
    if config.scale_pos_weight:
        return config.scale_pos_weight
    if config.positive_weighting not in POSITIVE_WEIGHTINGS:
        raise ValueError(f"positive_weighting must be one of {POSITIVE_WEIGHTINGS}, not {config.positive_weighting!r}")
    return math.sqrt(negatives / positives) if config.positive_weighting == "sqrt_ratio" else 1.0


def validation_scores(labels: np.ndarray, log_odds: np.ndarray, *, seed: int = 0) -> dict:
    """What a search trial is judged by: the log-loss its probabilities would have once
    calibrated as the final model's are (cross-validated on validation, so a trial is not
    penalised for a miscalibration that Platt scaling removes), each row's log-loss under that
    calibration (for the paired comparison with the defaults), and average precision."""
    from sklearn.metrics import average_precision_score

    probabilities = sigmoid(log_odds)
    calibration, cross_validated = fit_calibration(labels, probabilities, seed=seed)
    calibrated = np.clip(calibration.apply(probabilities), 1e-15, 1 - 1e-15)
    row_losses = -(labels * np.log(calibrated) + (1 - labels) * np.log1p(-calibrated))
    return {"log_loss": min(cross_validated.values()), "row_losses": row_losses,
            "auprc": float(average_precision_score(labels, probabilities))}


def require_frauds(train_frauds: int, validation_frauds: int) -> None:
    if train_frauds == 0 or validation_frauds == 0:
        raise ValueError(
            "training and validation splits both need frauds "
            f"(train: {int(train_frauds)}, validation: {int(validation_frauds)})"
        )


def booster_params(config: TrainingConfig, weight: float) -> dict:
    """XGBoost's parameters, one set for training in this process and on a Dask cluster."""
    return {
        "objective": "binary:logistic",
        "eval_metric": config.eval_metric,
        "tree_method": "hist",
        "eta": config.learning_rate,
        "max_depth": config.max_depth,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "num_parallel_tree": config.parallel_trees,
        "colsample_bytree": config.colsample_bytree,
        "lambda": config.reg_lambda,
        "max_bin": config.max_bin,
        "scale_pos_weight": weight,
        "seed": config.seed,
        "nthread": config.n_threads,
    }


@dataclass(frozen=True)
class StoppedBooster:
    """A trained booster cut at early stopping's best round, and how it got there."""

    booster: xgb.Booster
    weight: float
    best_iteration: int
    training_seconds: float


def stopped_at_best(booster: xgb.Booster, weight: float, started: float) -> StoppedBooster:
    # Keep only the trees up to the best validation round: the rounds that early stopping
    # chose are the ones shipped (refitted or not), and smaller models score faster.
    best_iteration = int(booster.best_iteration)
    best_score, booster_rounds = float(booster.best_score), booster.num_boosted_rounds()
    training_seconds = time.perf_counter() - started
    log.info("early stopping kept %d of %d rounds (best validation score %.4f) after %.1f s",
             best_iteration + 1, booster_rounds, best_score, training_seconds)
    return StoppedBooster(booster[: best_iteration + 1], weight, best_iteration, training_seconds)


def refitted(stopped: StoppedBooster, params: dict, train_and_validation: xgb.DMatrix) -> StoppedBooster:
    """The rounds early stopping kept, fitted again on train and validation together with the
    same parameters and weight. No stopping: validation is in the fit now, so it cannot judge
    it; the round count it chose carries over (on the generated variants, scaling it up with
    the extra rows did no better)."""
    fitted_from = time.perf_counter()
    booster = xgb.train(params, train_and_validation, num_boost_round=stopped.best_iteration + 1,
                        verbose_eval=False)
    log.info("refitted %d rounds on %d train and validation rows in %.1f s", stopped.best_iteration + 1,
             train_and_validation.num_row(), time.perf_counter() - fitted_from)
    return StoppedBooster(booster, stopped.weight, stopped.best_iteration,
                          stopped.training_seconds + time.perf_counter() - fitted_from)


def refit_report(split_counts: dict, stopped: StoppedBooster) -> dict:
    """The manifest's account of a refit: the train and validation rows and frauds it fitted,
    and the rounds."""
    fitted = (split_counts["train"], split_counts["validation"])
    return {"rows": sum(part["rows"] for part in fitted), "frauds": sum(part["frauds"] for part in fitted),
            "rounds": stopped.best_iteration + 1}


def untuned_model(stopped: StoppedBooster, preprocessor: Preprocessor, created: datetime) -> FraudModel:
    """The bundle before its threshold and manifest: what held-out rows are scored with."""
    booster_bytes = bytes(stopped.booster.save_raw("ubj"))
    return FraudModel(
        booster_bytes=booster_bytes,
        version=make_version(booster_bytes, created),
        preprocessor=preprocessor,
        threshold=0.5,
        log_odds_correction=log_odds_correction_for(stopped.weight),
    )


def _fit_and_score(train_matrix: xgb.DMatrix, valid_matrix: xgb.DMatrix, y_train: np.ndarray, y_valid: np.ndarray,
                   seed: int, on_round: OnRound | None = None) -> tuple[Fit, Score]:
    """How a configuration is trained (early stopping on validation) and judged (calibrated
    validation log-loss): the final fit and every search trial alike."""
    negatives, positives = len(y_train) - y_train.sum(), y_train.sum()

    def fit(trial_config: TrainingConfig, callbacks: list) -> StoppedBooster:
        weight = positive_weight(trial_config, negatives, positives)
        fitted_from = time.perf_counter()
        booster = xgb.train(
            booster_params(trial_config, weight),
            train_matrix,
            num_boost_round=trial_config.n_estimators,
            evals=[(valid_matrix, "validation")],
            verbose_eval=False,
            # Early stopping goes before the caller's callbacks: XGBoost stops asking callbacks
            # once one says stop, and a search deadline met in the first round would otherwise
            # leave the booster without the best round that early stopping records.
            callbacks=[_RoundReporter(trial_config.n_estimators, on_round),
                       xgb.callback.EarlyStopping(rounds=trial_config.early_stopping_rounds),
                       *callbacks],
        )
        return stopped_at_best(booster, weight, fitted_from)

    def score(stopped: StoppedBooster) -> dict:
        margins = stopped.booster.predict(valid_matrix, output_margin=True)
        return validation_scores(y_valid, margins - log_odds_correction_for(stopped.weight), seed=seed)

    return fit, score


def search_on_rows(train: pd.DataFrame, validation: pd.DataFrame, preprocessor: Preprocessor,
                   config: TrainingConfig) -> SearchOutcome:
    """The search :func:`train_fraud_model` runs, on these rows alone: how a Dask worker
    searches a sample of data too large for one process (``fraud_assets.core.cluster``)."""
    y_train, y_valid = train[LABEL].to_numpy(), validation[LABEL].to_numpy()
    require_frauds(int(y_train.sum()), int(y_valid.sum()))
    names = list(preprocessor.feature_names)
    train_matrix = xgb.QuantileDMatrix(preprocessor.transform_frame(train), label=y_train, feature_names=names,
                                       max_bin=config.max_bin)
    valid_matrix = xgb.QuantileDMatrix(preprocessor.transform_frame(validation), label=y_valid,
                                       feature_names=names, ref=train_matrix)
    return search_configuration(config, *_fit_and_score(train_matrix, valid_matrix, y_train, y_valid, config.seed))


def train_fraud_model(
    splits: Splits,
    preprocessor: Preprocessor,
    config: TrainingConfig = TrainingConfig(),
    *,
    run_id: str | None = None,
    on_round: OnRound | None = None,
) -> FraudModel:
    """Fit on train, stop early and pick the threshold on validation, refit on train and
    validation (``config.refit_on_validation``), report on test.

    ``run_id``: the orchestrator's run that trains it (Dagster's), recorded in the manifest.
    ``on_round(done, most)``: called after each boosting round.
    """
    started = time.perf_counter()
    y_train = splits.train[LABEL].to_numpy()
    y_valid = splits.validation[LABEL].to_numpy()
    require_frauds(int(y_train.sum()), int(y_valid.sum()))
    positives = y_train.sum()

    log.info("training on %d rows (%d frauds), stopping on %d validation rows",
             len(y_train), int(positives), len(y_valid))
    names = list(preprocessor.feature_names)
    train_features = preprocessor.transform_frame(splits.train)
    valid_features = preprocessor.transform_frame(splits.validation)
    train_matrix = xgb.QuantileDMatrix(train_features, label=y_train, feature_names=names, max_bin=config.max_bin)
    valid_matrix = xgb.QuantileDMatrix(valid_features, label=y_valid, feature_names=names, ref=train_matrix)
    fit, score = _fit_and_score(train_matrix, valid_matrix, y_train, y_valid, config.seed, on_round)

    if config.search_budget_seconds > 0 and config.search_trials > 1:
        outcome = search_configuration(config, fit, score)
        config, stopped, search_report = outcome.config, outcome.stopped, outcome.report
    else:
        stopped, search_report = fit(config, []), None
    created = datetime.now(UTC)
    early = untuned_model(stopped, preprocessor, created)
    split_counts = {
        name: {"rows": len(part), "frauds": int(part[LABEL].sum())}
        for name, part in (("train", splits.train), ("validation", splits.validation), ("test", splits.test))
    }
    refit = None
    if config.refit_on_validation:
        stopped = refitted(stopped, booster_params(config, stopped.weight), xgb.QuantileDMatrix(
            np.concatenate([train_features, valid_features]), label=np.concatenate([y_train, y_valid]),
            feature_names=names, max_bin=config.max_bin))
        refit = refit_report(split_counts, stopped)
    model = untuned_model(stopped, preprocessor, created) if refit else early
    evidence = HeldOutEvidence(
        validation=ScoredRows(y_valid, early.predict_proba(feature_matrix(splits.validation))),
        test=ScoredRows(splits.test[LABEL].to_numpy(), model.predict_proba(feature_matrix(splits.test))),
        rows_per_day=rows_per_day(splits),
        split_counts=split_counts,
        drift_columns={name: splits.train[name].to_numpy() for name in profile.DRIFT_FEATURES},
        refitted_on_validation=refit is not None,
    )
    return complete_model(
        model, stopped, config, evidence,
        provenance_document=provenance((splits.train, splits.validation, splits.test), run_id=run_id),
        created=created,
        extra_training={"refit": refit},
        search=search_report,
        training_seconds=time.perf_counter() - started,
    )
