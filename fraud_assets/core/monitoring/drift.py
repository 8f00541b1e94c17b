"""Distribution drift of features and model scores against the training reference.

The reference is the training data's profile (:mod:`fraud_assets.core.data.profile`); the
current data is streamed through :class:`DriftAccumulator` chunk by chunk without holding a
whole day's file in memory.

Two statistics per feature, as is common practice:
- PSI over the reference deciles (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major);
- Wasserstein-1 distance divided by the reference std (robust for large samples, where KS
  p-values flag differences too small to matter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fraud_assets.core.data.profile import FeatureReference

_PSI_FLOOR = 1e-4  # keeps empty bins from sending PSI to infinity
# How far beyond the reference range one value may pull the Wasserstein distance, in
# reference standard deviations. Unbounded, a single Amount of 1e30 among thousands of rows
# made the whole column "drifted"; bounded, one row moves the scaled distance by at most
# _TAIL_REACH_STDS / rows, while a real shift of many rows still shows in full.
_TAIL_REACH_STDS = 4.0


@dataclass(frozen=True)
class DriftThresholds:
    psi_moderate: float = 0.1
    psi_major: float = 0.25
    wasserstein: float = 0.1
    drift_share: float = 0.5


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

    def report(self, thresholds: DriftThresholds = DriftThresholds()) -> dict:
        if self.rows == 0:
            raise ValueError("no current rows to compare with the reference")
        features = {}
        for name, tally in self._tallies.items():
            if tally.rows == 0:
                continue
            psi = tally.psi()
            std = tally.reference.std
            scaled = tally.wasserstein() / std if std > 0 else 0.0
            features[name] = {
                "psi": round(psi, 6),
                "psi_level": _psi_level(psi, thresholds),
                "wasserstein_scaled": round(scaled, 6),
                "drifted": bool(scaled >= thresholds.wasserstein or psi >= thresholds.psi_major),
                "rows": tally.rows,
            }
        drifted = [name for name, stats in features.items() if stats["drifted"]]
        share = len(drifted) / len(features)
        detected = share >= thresholds.drift_share
        worst_psi = max(stats["psi"] for stats in features.values())
        return {
            "drift_detected": bool(detected),
            "drift_level": _dataset_level(detected, worst_psi, bool(drifted), thresholds),
            "drift_share": round(share, 6),
            "drifted_features": sorted(drifted, key=lambda n: -features[n]["psi"]),
            "rows": self.rows,
            "thresholds": {
                "psi_moderate": thresholds.psi_moderate,
                "psi_major": thresholds.psi_major,
                "wasserstein": thresholds.wasserstein,
                "drift_share": thresholds.drift_share,
            },
            "features": features,
        }


def _psi_level(psi: float, thresholds: DriftThresholds) -> str:
    if psi >= thresholds.psi_major:
        return "major"
    if psi >= thresholds.psi_moderate:
        return "moderate"
    return "stable"


def _dataset_level(detected: bool, worst_psi: float, any_drifted: bool, thresholds) -> str:
    if detected or worst_psi >= thresholds.psi_major:
        return "major"
    if any_drifted or worst_psi >= thresholds.psi_moderate:
        return "moderate"
    return "stable"


def compare(
    reference: Mapping[str, FeatureReference],
    current: Mapping[str, np.ndarray],
    thresholds: DriftThresholds = DriftThresholds(),
) -> dict:
    """One-shot comparison for data that fits in memory."""
    accumulator = DriftAccumulator(reference)
    accumulator.add(current)
    return accumulator.report(thresholds)
