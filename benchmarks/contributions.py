"""Exact contributions in process: the model's tables against XGBoost's own ``pred_contribs``.

    .venv/bin/python benchmarks/contributions.py                  # ULB-size model, ~30 s
    .venv/bin/python benchmarks/contributions.py --rows 50000     # smaller, for a smoke run
    .venv/bin/python benchmarks/contributions.py --max-depth 6 --learning-rate 0.05 --trees 500

Trains a model with the default ``TrainingConfig`` (or the depth and rate given; with
``--trees``, exactly that many trees) on generated rows, then times both ways of computing
the same numbers for batches of several sizes, with XGBoost on one thread and on every
core, and prints medians, ratios and the largest difference between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import replace

import numpy as np

BATCH_SIZES = (1, 20, 1_000, 10_000)


def _median_seconds(function, repeats: int) -> float:
    function()  # first call: allocations, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=284_807, help="training rows (ULB size by default)")
    parser.add_argument("--max-depth", type=int, help="override TrainingConfig.max_depth")
    parser.add_argument("--learning-rate", type=float, help="override TrainingConfig.learning_rate")
    parser.add_argument("--trees", type=int, help="exactly this many trees (xgboost.train, no early stopping)")
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args()


def _booster_and_traffic(args: argparse.Namespace):
    import xgboost as xgb

    from fraud_assets.core.data.features import fit_preprocessor
    from fraud_assets.core.data.schema import LABEL, feature_matrix
    from fraud_assets.core.data.splits import split_transactions
    from fraud_assets.core.model.training import TrainingConfig, train_fraud_model
    from fraud_assets.synthetic.generate import generate_transactions

    config = TrainingConfig()
    if args.max_depth is not None:
        config = replace(config, max_depth=args.max_depth)
    if args.learning_rate is not None:
        config = replace(config, learning_rate=args.learning_rate)
    splits = split_transactions(generate_transactions(args.rows, seed=0))
    preprocessor = fit_preprocessor(splits.train)
    if args.trees is None:
        booster = train_fraud_model(splits, preprocessor, config).booster
    else:
        train = xgb.DMatrix(
            preprocessor.transform(feature_matrix(splits.train)), label=splits.train[LABEL].to_numpy()
        )
        parameters = {"objective": "binary:logistic", "max_depth": config.max_depth, "eta": config.learning_rate}
        booster = xgb.train(parameters, train, num_boost_round=args.trees)
    traffic = generate_transactions(max(BATCH_SIZES), seed=1, start_day=2, n_days=1, labels=False)
    return booster, preprocessor.transform(feature_matrix(traffic)), config


def main() -> None:
    args = _arguments()
    import xgboost as xgb

    from fraud_assets.core.model.tree_shap import TreeShapTables

    booster, features, config = _booster_and_traffic(args)
    start = time.perf_counter()
    tables = TreeShapTables.from_xgboost_json(json.loads(booster.save_raw("json")))
    build_seconds = time.perf_counter() - start
    trees = booster.num_boosted_rounds()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; model: {trees} trees, "
        f"max depth {config.max_depth}; tables: {len(tables.group_splits)} groups, "
        f"{tables.table_values.nbytes / 2**20:.1f} MiB, built in {build_seconds * 1e3:.0f} ms"
    )

    def xgboost_contributions(rows: np.ndarray) -> np.ndarray:
        return booster.predict(xgb.DMatrix(rows), pred_contribs=True)[:, :-1]

    difference = float(np.abs(tables.shap_values(features) - xgboost_contributions(features)).max())
    print(f"largest difference from XGBoost's values over {len(features):,} rows: {difference:.3g}")

    cores = os.cpu_count() or 1
    results = []
    print(f"{'rows':>7} {'tables ms':>10} {'XGBoost 1 thread':>17} {'XGBoost all cores':>18} {'ratio (all)':>11}")
    for size in BATCH_SIZES:
        batch = features[:size]
        repeats = max(5, min(200, 20_000 // size))
        table_seconds = _median_seconds(lambda b=batch: tables.shap_values(b), repeats)
        xgboost_seconds = {}
        for threads in (1, cores):
            xgb.set_config(nthread=threads)
            xgboost_seconds[threads] = _median_seconds(
                lambda b=batch: xgboost_contributions(b), max(3, repeats // 4)
            )
        print(
            f"{size:>7,} {table_seconds * 1e3:>10.2f} {xgboost_seconds[1] * 1e3:>17.2f} "
            f"{xgboost_seconds[cores] * 1e3:>18.2f} {xgboost_seconds[cores] / table_seconds:>10.1f}x"
        )
        results.append(
            {
                "rows": size,
                "tables_s": table_seconds,
                "xgboost_1_thread_s": xgboost_seconds[1],
                "xgboost_all_cores_s": xgboost_seconds[cores],
            }
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"trees": trees, "max_difference": difference, "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
