"""Choosing the booster's configuration from the data in front of it: a seeded Optuna (TPE)
search on the validation split, under a time budget.

Every trial trains with early stopping on validation and is judged by the validation log-loss
of its probabilities (corrected for the positive weight). A proper scoring rule rewards ranking
and calibration together, and over the few hundred frauds of a validation split it is far less
noisy than average precision, which is recorded beside it.

The first trial is always the configuration given (the defaults), trained to the end. The
best trial replaces it only on evidence: its per-row log-loss on validation must beat the
defaults' by more than ``EVIDENCE_Z`` standard errors of the paired difference. Without that
rule the search chased validation noise: with a few hundred validation frauds, the lowest of
ten log-losses is often lower by luck, and on unseen days it scored below the defaults
(docs/model-quality.md). Later trials that the budget's end interrupts are recorded as pruned
rather than judged half-trained.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # training imports this module
    from fraud_assets.core.model.training import StoppedBooster, TrainingConfig

log = logging.getLogger(__name__)

# Measured at ULB size on 2 cores (docs/model-quality.md): a minute fits the default and
# about ten more trials, and the whole `fraud train` stays well inside three minutes.
DEFAULT_BUDGET_SECONDS = 60.0
DEFAULT_MAX_TRIALS = 30
# How many standard errors of the paired per-row difference the best trial's validation
# log-loss must beat the defaults' by, before it replaces them.
EVIDENCE_Z = 2.0

# A trial's configuration in, the booster it trained (cut at its best round) out. The callback
# list carries the budget's deadline into XGBoost's boosting loop.
Fit = Callable[["TrainingConfig", list], "StoppedBooster"]
# {"log_loss": ..., "auprc": ..., "row_losses": array} of a trained booster on the validation
# split; row_losses are each validation row's log-loss, for the paired comparison.
Score = Callable[["StoppedBooster"], dict]


@dataclass(frozen=True)
class SearchOutcome:
    config: TrainingConfig
    stopped: StoppedBooster
    # The manifest's "search" section: budget, trials, the chosen trial.
    report: dict


def searched_fields(trial: Any, base: TrainingConfig) -> dict:
    """The TrainingConfig fields a trial sets. Ranges are wide enough for data from 0.1 % to a
    few % fraud and from weak to strong signal; the learning rate's floor keeps a trial within
    ``n_estimators`` rounds."""
    fields = {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 50.0, log=True),
        "eval_metric": trial.suggest_categorical("eval_metric", ["logloss", "aucpr"]),
    }
    if base.scale_pos_weight is None:  # a weight the user set is theirs, not the search's
        fields["positive_weighting"] = trial.suggest_categorical("positive_weighting", ["none", "sqrt_ratio"])
    return fields


def starting_point(base: TrainingConfig) -> dict:
    """The given configuration in the search's own parameter names: its first trial."""
    point = {name: getattr(base, name) for name in
             ("learning_rate", "max_depth", "min_child_weight", "subsample", "colsample_bytree",
              "reg_lambda", "eval_metric")}
    if base.scale_pos_weight is None:
        point["positive_weighting"] = base.positive_weighting
    return point


class _Deadline:
    """An XGBoost callback that ends boosting once the budget is spent, and remembers it did."""

    def __init__(self, at: float):
        import xgboost as xgb

        class _Callback(xgb.callback.TrainingCallback):
            def after_iteration(inner, model, epoch, evals_log) -> bool:  # noqa: N805
                self.reached = self.reached or time.perf_counter() >= self.at
                return self.reached

        self.at, self.reached = at, False
        self.callback = _Callback()


def search_configuration(base: TrainingConfig, fit: Fit, score: Score) -> SearchOutcome:
    """Run the search that ``base.search_budget_seconds`` and ``base.search_trials`` allow and
    return the best configuration with the booster it trained, early-stopped on validation
    (the caller may refit its rounds on train and validation)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    deadline = started + base.search_budget_seconds
    sampler = optuna.samplers.TPESampler(seed=base.seed, n_startup_trials=min(8, base.search_trials))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.enqueue_trial(starting_point(base))
    best: dict = {}
    defaults: dict = {}
    extra: dict[int, dict] = {}

    def objective(trial) -> float:
        config = dataclasses.replace(base, **searched_fields(trial, base))
        first = trial.number == 0
        cut = _Deadline(math.inf if first else deadline)
        trial_started = time.perf_counter()
        stopped = fit(config, [cut.callback])
        extra[trial.number] = {"seconds": round(time.perf_counter() - trial_started, 3),
                               "best_iteration": stopped.best_iteration}
        if cut.reached:
            raise optuna.TrialPruned("the search's time budget ran out")
        scores = score(stopped)
        extra[trial.number]["validation_auprc"] = scores["auprc"]
        log.info("search trial %d: validation log-loss %.5f, AUPRC %.4f, %d rounds, %.1f s",
                 trial.number, scores["log_loss"], scores["auprc"], stopped.best_iteration + 1,
                 extra[trial.number]["seconds"])
        found = dict(value=scores["log_loss"], config=config, stopped=stopped, number=trial.number,
                     row_losses=scores["row_losses"])
        if first:
            defaults.update(found)
        if not best or scores["log_loss"] < best["value"]:
            best.update(found)
        if time.perf_counter() >= deadline:
            trial.study.stop()
        return scores["log_loss"]

    study.optimize(objective, n_trials=base.search_trials, timeout=base.search_budget_seconds,
                   catch=(ValueError,))
    evidence = paired_evidence(defaults["row_losses"], best["row_losses"])
    if best["number"] != 0 and evidence["z"] <= EVIDENCE_Z:
        log.info("search: trial %d's gain over the defaults is within noise (z %.2f): defaults kept",
                 best["number"], evidence["z"])
        chosen = defaults
    else:
        chosen = best
    report = {
        "library": f"optuna {optuna.__version__}",
        "sampler": "TPE",
        "objective": "validation log-loss",
        "seed": base.seed,
        "budget_seconds": base.search_budget_seconds,
        "max_trials": base.search_trials,
        "seconds": round(time.perf_counter() - started, 3),
        "best_trial": best["number"],
        # The best trial against the defaults, per validation row: mean log-loss gain and z.
        "evidence_over_defaults": evidence,
        "evidence_z_required": EVIDENCE_Z,
        "chosen_trial": chosen["number"],
        "chosen": dict(study.trials[chosen["number"]].params),
        "trials": [_trial_record(trial, extra.get(trial.number, {})) for trial in study.trials],
    }
    log.info("search chose trial %d of %d in %.1f s", chosen["number"], len(study.trials), report["seconds"])
    return SearchOutcome(chosen["config"], chosen["stopped"], report)


def paired_evidence(default_losses, trial_losses) -> dict:
    """How far the trial's per-row losses beat the defaults' on the same rows: the mean gain
    and that gain in standard errors of the paired difference (0 when they are identical)."""
    import numpy as np

    gains = np.asarray(default_losses, dtype=np.float64) - np.asarray(trial_losses, dtype=np.float64)
    mean = float(gains.mean()) if len(gains) else 0.0
    spread = float(gains.std(ddof=1)) / math.sqrt(len(gains)) if len(gains) > 1 else 0.0
    z = mean / spread if spread > 0 else 0.0
    # Four significant figures: the gain is a small difference of losses, read beside z.
    return {"mean_gain": float(f"{mean:.4g}"), "z": round(z, 3)}


def _trial_record(trial, extra: dict) -> dict:
    value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
    return {
        "number": trial.number,
        "params": dict(trial.params),
        "value": value,
        "state": trial.state.name,
        **extra,
    }
