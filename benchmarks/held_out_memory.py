"""What the held-out rows cost the process that calibrates, picks the threshold and writes the
metrics: row by row (one process) against counts per score bin (what Dask workers send).

Run from the repository root (not a test; figures printed, nothing asserted):

    .venv/bin/python benchmarks/held_out_memory.py [--rows 10000000]

Draws ``--rows`` validation and as many test rows (labels from a known probability, a rare
class, scores a noisy estimate of it), then runs the evidence steps of
:func:`fraud_assets.core.model.manifest.complete_model`: calibration chosen by cross-validation,
the max-F1 threshold, both classification reports, the reliability table and the PR curve.
Each way runs in a fresh process; its peak RSS comes from ``os.wait4``. The binned way draws
and counts the rows a million at a time, as partitions arrive from workers, and never holds
them all.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 1_000_000


def _draw(rows: int, seed: int):
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(-7.0, 2.0, rows)
    labels = (rng.random(rows) < 1 / (1 + np.exp(-true_log_odds))).astype(np.int8)
    scores = (1 / (1 + np.exp(-(1.3 * true_log_odds + rng.normal(0, 0.7, rows))))).astype(np.float32)
    return labels, scores


def _chunks(rows: int, seed: int):
    for number, start in enumerate(range(0, rows, CHUNK)):
        yield _draw(min(CHUNK, rows - start), seed * 1_000 + number)


def _evidence(way: str, rows: int):
    from fraud_assets.core.model.scored_rows import CALIBRATION_FOLDS, ScoreCounts, ScoredRows, count_scores

    if way == "rows":
        def split(seed: int) -> ScoredRows:
            parts = list(_chunks(rows, seed))
            return ScoredRows(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        return split(1), split(2)
    totals = ScoreCounts(groups=2, folds=CALIBRATION_FOLDS)
    for group, seed in ((0, 1), (1, 2)):
        for number, (labels, scores) in enumerate(_chunks(rows, seed)):
            # Folds as a content hash would give them: spread evenly, independent of the score.
            folds = np.random.default_rng(number).integers(0, CALIBRATION_FOLDS, len(labels)) if group == 0 else None
            totals.add(count_scores(labels, scores, group=group, folds=folds))
    return totals.scored_rows(0), totals.scored_rows(1)


def _run_one(way: str, rows: int) -> None:
    from fraud_assets.core.model.calibration import calibration_report, fit_calibration
    from fraud_assets.core.model.evaluation import classification_report, precision_recall_points
    from fraud_assets.core.model.threshold import choose_threshold

    started = time.perf_counter()
    validation, test = _evidence(way, rows)
    calibration, losses = fit_calibration(validation.labels, validation.scores, weights=validation.weights,
                                          folds=validation.folds)
    valid_scores, test_scores = calibration.apply(validation.scores), calibration.apply(test.scores)
    choice = choose_threshold(validation.labels, valid_scores, weights=validation.weights)
    report = classification_report(test.labels, test_scores, choice.threshold, test.weights)
    classification_report(validation.labels, valid_scores, choice.threshold, validation.weights)
    calibration_report(calibration, losses, test.labels, test.scores, test_scores, test.weights)
    precision_recall_points(test.labels, test_scores, choice.threshold, weights=test.weights)
    print(f"RESULT {time.perf_counter() - started:.1f} {report['auprc']:.6f} {report['log_loss']:.6f} "
          f"{choice.threshold:.6f} {report['f1']:.6f} {calibration.slope:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows per held-out split")
    parser.add_argument("--way", choices=["rows", "bins"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        _run_one(args.way, args.rows)
        return
    print(f"{args.rows:,} validation and {args.rows:,} test rows")
    print(f"{'way':6} {'seconds':>8} {'peak MB':>8} {'test AP':>9} {'log-loss':>9} {'threshold':>10} "
          f"{'test F1':>8} {'Platt slope':>11}")
    for way in ("rows", "bins"):
        process = subprocess.Popen([sys.executable, __file__, "--rows", str(args.rows), "--way", way],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        output = process.stdout.read().decode()
        if status != 0:
            raise RuntimeError(output[-3000:])
        seconds, auprc, loss, threshold, f1, slope = output.split("RESULT ")[-1].split()
        print(f"{way:6} {float(seconds):8.1f} {usage.ru_maxrss / 1024:8,.0f} {float(auprc):9.5f} {float(loss):9.6f} "
              f"{float(threshold):10.6f} {float(f1):8.4f} {float(slope):11.4f}")


if __name__ == "__main__":
    main()
