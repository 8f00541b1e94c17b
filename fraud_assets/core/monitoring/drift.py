"""Distribution drift of features and model scores against the training reference.

The reference is the training data's profile (:mod:`fraud_assets.core.data.profile`); the
current data is streamed through :class:`DriftAccumulator` chunk by chunk without holding a
whole day's file in memory.

Three statistics per feature, as is common practice:
- PSI over the reference deciles (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major);
- Wasserstein-1 distance divided by the reference std (robust for large samples, where KS
  p-values flag differences too small to matter);
- the Kolmogorov-Smirnov distance on the reference grid, whose p-value tells a real change
  from the noise of a small batch.

:mod:`fraud_assets.core.monitoring.verdict` turns them into the one verdict of the day.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fraud_assets.core.data.profile import SCORE, FeatureReference
from fraud_assets.core.monitoring.verdict import (
    DEFAULT_THRESHOLDS,
    DriftThresholds,
    dataset_verdict,
    feature_level,
    feature_weights,
    ks_p_value,
)

_PSI_FLOOR = 1e-4  # keeps empty bins from sending PSI to infinity
# How far beyond the reference range one value may pull the Wasserstein distance, in
# reference standard deviations. Unbounded, a single Amount of 1e30 among thousands of rows
# made the whole column "drifted"; bounded, one row moves the scaled distance by at most
# _TAIL_REACH_STDS / rows, while a real shift of many rows still shows in full.
_TAIL_REACH_STDS = 4.0


class _FeatureTally:
    """Streaming counts of current values on the reference's grid and decile bins."""

    def __init__(self, reference: FeatureReference):
        self.reference = reference
        self.rows = 0
        self.grid_counts = np.zeros(len(reference.grid), dtype=np.int64)
        self.psi_counts = np.zeros(len(reference.psi_edges) + 1, dtype=np.int64)
        self.below_sum = 0.0  # sum of (grid[0] - x) over x below the reference range
        self.above_sum = 0.0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        grid = self.reference.grid
        # Count of current values <= each grid point, accumulated via bin counts.
        positions = np.searchsorted(grid, values, side="left")
        self.grid_counts += np.bincount(positions, minlength=len(grid) + 1)[: len(grid)]
        self.psi_counts += np.bincount(
            np.searchsorted(self.reference.psi_edges, values, side="right"),
            minlength=len(self.psi_counts),
        )
        reach = _TAIL_REACH_STDS * self.reference.std if self.reference.std > 0 else None
        self.below_sum += float(np.sum(np.clip(grid[0] - values, 0, reach)))
        self.above_sum += float(np.sum(np.clip(values - grid[-1], 0, reach)))
        self.rows += len(values)

    def psi(self) -> float:
        current = np.maximum(self.psi_counts / max(self.rows, 1), _PSI_FLOOR)
        reference = np.maximum(self.reference.psi_fractions, _PSI_FLOOR)
        return float(np.sum((current - reference) * np.log(current / reference)))

    def wasserstein(self) -> float:
        """W1 = integral of |F_ref - F_cur|, on the reference grid plus exact tails."""
        reference = self.reference
        current_cdf = np.cumsum(self.grid_counts) / max(self.rows, 1)
        widths = np.diff(reference.grid)
        inside = float(np.sum(np.abs(reference.grid_cdf[:-1] - current_cdf[:-1]) * widths))
        tails = (self.below_sum + self.above_sum) / max(self.rows, 1)
        return inside + tails

    def ks_distance(self) -> float:
        """Largest gap between the two CDFs at the reference's quantile grid points."""
        current_cdf = np.cumsum(self.grid_counts) / max(self.rows, 1)
        return float(np.max(np.abs(self.reference.grid_cdf - current_cdf)))


class DriftAccumulator:
    """Feed chunks of current data with :meth:`add`; read the verdict with :meth:`report`."""

    def __init__(self, reference: Mapping[str, FeatureReference]):
        self._tallies = {name: _FeatureTally(feature) for name, feature in reference.items()}

    def add(self, columns: Mapping[str, np.ndarray]) -> None:
        for name, values in columns.items():
            if name in self._tallies:
                self._tallies[name].add(values)

    @property
    def rows(self) -> int:
        return max((tally.rows for tally in self._tallies.values()), default=0)

    def report(
        self,
        thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
        importance: Mapping[str, float] | None = None,
    ) -> dict:
        """Per-feature statistics and the day's verdict; ``importance``: the model's share of
        gain per input feature (the manifest's ``feature_importance``), None to weigh alike."""
        if self.rows == 0:
            raise ValueError("no current rows to compare with the reference")
        tallies = {name: tally for name, tally in self._tallies.items() if tally.rows}
        # Bonferroni: with 30 features, one would pass a 5 % test by chance alone.
        alpha = thresholds.alpha / max(len(tallies), 1)
        features = {name: _feature_stats(tally, alpha, thresholds) for name, tally in tallies.items()}
        score = features.get(SCORE)
        inputs = {name: stats for name, stats in features.items() if name != SCORE}
        weights = feature_weights(list(inputs), importance)
        for name, stats in inputs.items():
            stats["weight"] = round(weights[name], 6)
        verdict = dataset_verdict(inputs, weights, score, thresholds)
        drifted = [name for name, stats in inputs.items() if stats["drifted"]]
        return {
            **verdict,
            "drifted_features": sorted(drifted, key=lambda n: -inputs[n]["psi"]),
            "largest_psi": max((stats["psi"] for stats in inputs.values()), default=0.0),
            "score_psi": score["psi"] if score is not None else None,
            "rows": self.rows,
            "weighted_by": "model gain" if importance else "equal",
            "thresholds": thresholds.to_dict(),
            "features": features,
        }


def _psi_noise(tally: _FeatureTally) -> float:
    """PSI's expected value between two samples of one distribution, about (bins - 1) *
    (1/n + 1/N): a batch of 300 rows scores 0.03 from sampling alone, a third of the way to
    "moderate", so the level is judged on PSI less this."""
    bins = len(tally.reference.psi_fractions)
    return (bins - 1) * (1 / max(tally.rows, 1) + 1 / max(tally.reference.rows, 1))


def _feature_stats(tally: _FeatureTally, alpha: float, thresholds: DriftThresholds) -> dict:
    psi = tally.psi()
    excess_psi = max(psi - _psi_noise(tally), 0.0)
    std = tally.reference.std
    scaled = tally.wasserstein() / std if std > 0 else 0.0
    distance = tally.ks_distance()
    p_value = ks_p_value(distance, tally.reference.rows, tally.rows)
    level = feature_level(excess_psi, scaled, p_value < alpha, thresholds)
    return {
        "psi": round(psi, 6),
        "wasserstein_scaled": round(scaled, 6),
        "ks": round(distance, 6),
        "p_value": float(f"{p_value:.3g}"),
        "level": level,
        "drifted": level != "none",
        "rows": tally.rows,
    }


def compare(
    reference: Mapping[str, FeatureReference],
    current: Mapping[str, np.ndarray],
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
    importance: Mapping[str, float] | None = None,
) -> dict:
    """One-shot comparison for data that fits in memory."""
    accumulator = DriftAccumulator(reference)
    accumulator.add(current)
    return accumulator.report(thresholds, importance)
