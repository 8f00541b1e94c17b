"""How close `fraud train`'s probabilities come to the best achievable, on data whose true
fraud probability is known.

A generator in the ULB creditcard.csv schema (Time, V1..V28, Amount, Class) draws features,
then each label from Bernoulli(p(x)) with p a known nonlinear function: interactions, a
threshold, a saturating term, the amount, and a night effect through Time. Two days train
through the same core functions the CLI calls (time split, preprocessing, training); the
following day is the unseen test batch. The best achievable figure is the metric computed
with the true probabilities.

A second family (`class_mixture.py`) draws the class first and the features from ULB-like
class densities; `--family` picks one or both.

Run: .venv/bin/python benchmarks/model_quality.py [--rows-per-day 142000] [--seeds 1] [--search-budget 60]
     [--family signal|mixture|both]
Prints, per variant: AP / best AP, log-loss / best log-loss and calibration error before
calibration (the booster's own probabilities) and after, the mean predicted against the true
fraud rate, the calibration method chosen and the training time; then the spread.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from dataclasses import dataclass

import class_mixture  # benchmarks/ is on sys.path when this runs as a script
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraud_assets.core.data.features import fit_preprocessor
from fraud_assets.core.data.schema import LABEL, feature_matrix
from fraud_assets.core.data.splits import split_transactions
from fraud_assets.core.model.calibration import Calibration, expected_calibration_error, log_loss, sigmoid
from fraud_assets.core.model.search import DEFAULT_BUDGET_SECONDS
from fraud_assets.core.model.training import TrainingConfig, train_fraud_model

DAY = 86_400


@dataclass(frozen=True)
class Variant:
    name: str
    fraud_rate: float
    separability: float  # scales the signal in the true log-odds
    heavy_tails: bool
    night_effect: float  # added log-odds between midnight and 6 am


VARIANTS = (
    Variant("ulb-like", 0.0017, 1.0, True, 1.0),
    Variant("weak", 0.0017, 0.5, True, 1.0),
    Variant("strong", 0.0017, 1.8, True, 1.0),
    Variant("rate-1%", 0.01, 1.0, True, 1.0),
    Variant("rate-0.1%", 0.001, 1.0, False, 0.0),
    Variant("night-heavy", 0.004, 0.8, True, 2.0),
)


def _features(rng: np.random.Generator, rows: int, first_day: int, days: int, heavy_tails: bool) -> pd.DataFrame:
    # More transactions by day than by night, as in the ULB data.
    hours = rng.choice(24, size=rows, p=_hour_weights())
    days_drawn = rng.integers(first_day, first_day + days, rows)
    times = np.sort(days_drawn * DAY + hours * 3600 + rng.uniform(0, 3600, rows))
    columns = {"Time": times}
    for index in range(1, 29):
        draw = rng.standard_t(3, rows) / np.sqrt(3) if heavy_tails and index % 3 == 0 else rng.normal(size=rows)
        columns[f"V{index}"] = draw * (1.0 / np.sqrt(index))  # falling variance, as PCA components
    columns["Amount"] = np.round(rng.lognormal(3.0, 1.4, rows), 2)
    return pd.DataFrame(columns)


def _hour_weights() -> np.ndarray:
    weights = 1.0 + 0.8 * np.sin((np.arange(24) - 8) / 24 * 2 * np.pi)
    return weights / weights.sum()


def _signal(frame: pd.DataFrame, variant: Variant) -> np.ndarray:
    v = {name: frame[name].to_numpy() for name in frame.columns}
    hour = (v["Time"] % DAY) / 3600
    raw = (
        -1.6 * v["V1"] * np.sqrt(1)
        + 2.2 * v["V2"] * v["V3"] * 3
        + 1.5 * (v["V4"] * 2 > 1.2)
        + 1.2 * np.tanh(3 * v["V5"] * np.sqrt(5))
        - 0.8 * np.abs(v["V6"] * np.sqrt(6))
        + 0.5 * np.log1p(v["Amount"]) / 3
        + 0.9 * (v["V7"] * np.sqrt(7) > 1.0) * (v["V8"] * np.sqrt(8) < 0)
    )
    return variant.separability * raw + variant.night_effect * (hour < 6)


def _intercept(signal: np.ndarray, rate: float) -> float:
    low, high = -30.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if sigmoid(signal + middle).mean() < rate else (low, middle)
    return (low + high) / 2


def generate(variant: Variant, rows_per_day: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Two labelled days to train on, the next day to test on, and its true probabilities."""
    rng = np.random.default_rng(seed)
    train = _features(rng, 2 * rows_per_day, 0, 2, variant.heavy_tails)
    test = _features(rng, rows_per_day, 2, 1, variant.heavy_tails)
    intercept = _intercept(_signal(train, variant), variant.fraud_rate)
    probabilities = {}
    for name, frame in (("train", train), ("test", test)):
        probabilities[name] = sigmoid(_signal(frame, variant) + intercept)
        frame[LABEL] = (rng.random(len(frame)) < probabilities[name]).astype(np.int64)
    return train, test, probabilities["test"]


FAMILIES = {
    "signal": [(variant, generate) for variant in VARIANTS],
    "mixture": [(variant, class_mixture.generate) for variant in class_mixture.VARIANTS],
}


def measure(variant, draw, rows_per_day: int, seed: int, config: TrainingConfig) -> dict:
    train, test, truth = draw(variant, rows_per_day, seed)
    splits = split_transactions(train, strategy="time", seed=config.seed)
    started = time.perf_counter()
    model = train_fraud_model(splits, fit_preprocessor(splits.train), config)
    seconds = time.perf_counter() - started
    labels = test[LABEL].to_numpy()
    raw = feature_matrix(test)
    after = model.predict_proba(raw)
    before = dataclasses.replace(model, calibration=Calibration()).predict_proba(raw)
    best_ap, best_loss = average_precision_score(labels, truth), log_loss(labels, truth)
    return {
        "variant": variant.name, "seed": seed, "frauds": int(labels.sum()),
        "ap_ratio": average_precision_score(labels, after) / best_ap,
        "loss_ratio_before": log_loss(labels, before) / best_loss,
        "loss_ratio_after": log_loss(labels, after) / best_loss,
        "ece_before": expected_calibration_error(labels, before),
        "ece_after": expected_calibration_error(labels, after),
        "mean_ratio_before": before.mean() / truth.mean(),
        "mean_ratio_after": after.mean() / truth.mean(),
        "method": model.calibration.method, "best_iteration": model.manifest["training"]["best_iteration"],
        "seconds": seconds,
        "chosen": (model.manifest.get("search") or {}).get("chosen"),
        "chosen_trial": (model.manifest.get("search") or {}).get("chosen_trial"),
        "best_trial": (model.manifest.get("search") or {}).get("best_trial"),
        "evidence_z": ((model.manifest.get("search") or {}).get("evidence_over_defaults") or {}).get("z"),
        "trials": len((model.manifest.get("search") or {}).get("trials", [])),
    }


def _short(params: dict) -> str:
    return ", ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in params.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-day", type=int, default=142_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--family", choices=("signal", "mixture", "both"), default="both")
    parser.add_argument("--variants", nargs="*", help="names of variants to run (default: all of the family)")
    parser.add_argument("--search-budget", type=float, default=DEFAULT_BUDGET_SECONDS,
                        help="seconds of hyperparameter search per training; 0 trains the defaults")
    args = parser.parse_args()
    config = TrainingConfig(n_threads=2, search_budget_seconds=args.search_budget)
    results = []
    header = (f"{'variant':12} {'seed':>4} {'frauds':>6} {'AP/best':>8} {'LL/best before':>14} {'after':>6} "
              f"{'ECE before':>10} {'after':>7} {'mean/true before':>16} {'after':>6} {'method':>6} {'iter':>5} {'s':>5}")
    print(header)
    families = ("signal", "mixture") if args.family == "both" else (args.family,)
    chosen = [(variant, draw) for family in families for variant, draw in FAMILIES[family]
              if not args.variants or variant.name in args.variants]
    for variant, draw in chosen:
        for seed in range(args.seeds):
            r = measure(variant, draw, args.rows_per_day, seed, config)
            results.append(r)
            print(f"{r['variant']:12} {seed:>4} {r['frauds']:>6} {r['ap_ratio']:>8.3f} {r['loss_ratio_before']:>14.3f} "
                  f"{r['loss_ratio_after']:>6.3f} {r['ece_before']:>10.5f} {r['ece_after']:>7.5f} "
                  f"{r['mean_ratio_before']:>16.2f} {r['mean_ratio_after']:>6.2f} {r['method']:>6} "
                  f"{r['best_iteration']:>5} {r['seconds']:>5.0f}", flush=True)
            if r["chosen"]:
                print(f"{'':12} trial {r['chosen_trial']} of {r['trials']} chosen (best on validation: "
                      f"{r['best_trial']}, z {r['evidence_z']} over the defaults): {_short(r['chosen'])}",
                      flush=True)
    for key in ("ap_ratio", "loss_ratio_before", "loss_ratio_after", "ece_before", "ece_after"):
        values = [r[key] for r in results]
        print(f"{key:18} min {min(values):.4f}  median {statistics.median(values):.4f}  max {max(values):.4f}")


if __name__ == "__main__":
    main()
