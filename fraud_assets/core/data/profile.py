"""Compact distribution profiles of features, built on the training data and kept with the model.

A profile (quantile grid, decile bins, standard deviation) is small enough to travel in the
model's manifest as JSON; :mod:`fraud_assets.core.monitoring.drift` compares current data
against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fraud_assets.core.data.schema import AMOUNT, PCA_COLUMNS

SCORE = "score"
DRIFT_FEATURES: tuple[str, ...] = (*PCA_COLUMNS, AMOUNT)
_GRID_POINTS = 1001
_PSI_BINS = 10


@dataclass(frozen=True)
class FeatureReference:
    grid: np.ndarray  # distinct quantiles of the reference, ascending
    grid_cdf: np.ndarray  # share of reference values <= each grid point
    psi_edges: np.ndarray  # inner decile edges
    psi_fractions: np.ndarray  # reference share in each of len(psi_edges) + 1 bins
    std: float
    rows: int

    def to_dict(self) -> dict:
        return {
            "grid": self.grid.tolist(),
            "grid_cdf": self.grid_cdf.tolist(),
            "psi_edges": self.psi_edges.tolist(),
            "psi_fractions": self.psi_fractions.tolist(),
            "std": self.std,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, document: Mapping) -> FeatureReference:
        return cls(
            grid=np.asarray(document["grid"], dtype=np.float64),
            grid_cdf=np.asarray(document["grid_cdf"], dtype=np.float64),
            psi_edges=np.asarray(document["psi_edges"], dtype=np.float64),
            psi_fractions=np.asarray(document["psi_fractions"], dtype=np.float64),
            std=float(document["std"]),
            rows=int(document["rows"]),
        )


def profile_feature(values: np.ndarray) -> FeatureReference:
    values = np.sort(np.asarray(values, dtype=np.float64))
    if len(values) == 0:
        raise ValueError("cannot profile an empty reference")
    grid = np.unique(np.quantile(values, np.linspace(0, 1, _GRID_POINTS)))
    grid_cdf = np.searchsorted(values, grid, side="right") / len(values)
    psi_edges = np.unique(np.quantile(values, np.linspace(0, 1, _PSI_BINS + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(psi_edges, values, side="right"), minlength=len(psi_edges) + 1)
    return FeatureReference(
        grid=grid,
        grid_cdf=grid_cdf,
        psi_edges=psi_edges,
        psi_fractions=counts / len(values),
        std=float(values.std()),
        rows=int(len(values)),
    )


def build_reference(columns: Mapping[str, np.ndarray]) -> dict[str, FeatureReference]:
    return {name: profile_feature(values) for name, values in columns.items()}


def reference_to_dict(reference: Mapping[str, FeatureReference]) -> dict:
    return {name: feature.to_dict() for name, feature in reference.items()}


def reference_from_dict(document: Mapping) -> dict[str, FeatureReference]:
    return {name: FeatureReference.from_dict(feature) for name, feature in document.items()}
