"""Feature preparation fitted on the training split and stored as plain JSON.

The fitted state is a handful of numbers, so it is saved as JSON and loaded back without
executing code (a pickle from storage could run anything).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fraud_assets.core.data.schema import (
    AMOUNT,
    FEATURE_COLUMNS,
    PCA_COLUMNS,
    SECONDS_PER_DAY,
    TIME,
    feature_matrix,
)

if TYPE_CHECKING:
    import pandas as pd

_AMOUNT_INDEX = FEATURE_COLUMNS.index(AMOUNT)
_TIME_INDEX = FEATURE_COLUMNS.index(TIME)
# V1..V28 sit side by side in the schema: a slice copies them without the temporary matrix
# that fancy indexing builds.
_PCA_COLUMNS_AT = slice(FEATURE_COLUMNS.index(PCA_COLUMNS[0]), FEATURE_COLUMNS.index(PCA_COLUMNS[-1]) + 1)
_N_PCA = len(PCA_COLUMNS)

# Fraud rates differ between night and day, and amounts span five orders of magnitude:
# hour of day (on a circle, so 23:59 sits next to 00:00) and log-amount carry that signal.
STANDARDISED_FEATURES: tuple[str, ...] = (*PCA_COLUMNS, "log_amount", "hour_sin", "hour_cos")
# Frauds lie far from the bulk of genuine transactions in many PCA components at once (in the
# published ULB moments their spread is 2 to 9 times the genuine one), and a tree's splits
# see one component at a time. Two summaries of the standardised components give them that
# distance in one split: log(1 + the squared distance from the training centre) and the sum
# of log(1 + |component|), which heavy-tailed genuine components do not dominate. On the
# 22 generated datasets of docs/model-quality.md they lowered log-loss / best on 19.
DISTANCE_FEATURES: tuple[str, ...] = ("pca_distance", "pca_log_deviation")
MODEL_FEATURES: tuple[str, ...] = (*STANDARDISED_FEATURES, *DISTANCE_FEATURES)
# Bundles written before the distance features: loaded as they were trained, 31 features.
_LAYOUTS = {"standardize-v1": STANDARDISED_FEATURES, "standardize-v2": MODEL_FEATURES}
_N_STANDARDISED = len(STANDARDISED_FEATURES)
# Rows per block when the distance features are computed: bounds the temporary they need.
_DISTANCE_BLOCK_ROWS = 65_536


@dataclass(frozen=True)
class Preprocessor:
    """Standardises the model features with statistics of the training split, then adds the
    distance features computed from the standardised components."""

    # One value per standardised feature (STANDARDISED_FEATURES).
    center: tuple[float, ...]
    scale: tuple[float, ...]
    # Stored in the JSON so that a reader sees what the numbers mean; ``transform`` computes
    # exactly these, so a file that names anything else is refused rather than misapplied.
    # STANDARDISED_FEATURES alone is the layout of bundles from before the distance features.
    feature_names: tuple[str, ...] = MODEL_FEATURES
    input_columns: tuple[str, ...] = FEATURE_COLUMNS

    def __post_init__(self) -> None:
        if tuple(self.input_columns) != FEATURE_COLUMNS:
            raise ValueError(f"input_columns must be {', '.join(FEATURE_COLUMNS)} in that order")
        if tuple(self.feature_names) not in _LAYOUTS.values():
            raise ValueError(f"feature_names must be {', '.join(MODEL_FEATURES)} in that order")
        if not len(self.center) == len(self.scale) == _N_STANDARDISED:
            raise ValueError(f"center and scale need {_N_STANDARDISED} values each")
        if not all(math.isfinite(v) for v in self.center) or not all(
            math.isfinite(s) and s > 0 for s in self.scale
        ):
            raise ValueError("center must be finite and scale finite and positive")

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Map a float32 matrix in ``input_columns`` order to the model's feature matrix."""
        if raw.ndim != 2 or raw.shape[1] != len(self.input_columns):
            raise ValueError(
                f"expected {len(self.input_columns)} columns {self.input_columns}, "
                f"got shape {raw.shape}"
            )
        out = np.empty((raw.shape[0], len(self.feature_names)), dtype=np.float32)
        out[:, :_N_PCA] = raw[:, _PCA_COLUMNS_AT]
        out[:, _N_PCA] = np.log1p(raw[:, _AMOUNT_INDEX])
        angle = (raw[:, _TIME_INDEX] % SECONDS_PER_DAY) * np.float32(2 * np.pi / SECONDS_PER_DAY)
        out[:, _N_PCA + 1] = np.sin(angle)
        out[:, _N_PCA + 2] = np.cos(angle)
        standardised = out[:, :_N_STANDARDISED]
        standardised -= np.asarray(self.center, dtype=np.float32)
        standardised *= np.asarray([1.0 / s for s in self.scale], dtype=np.float32)
        if len(self.feature_names) > _N_STANDARDISED:
            _add_distance_features(out)
        return out

    def transform_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transform(feature_matrix(frame))

    @property
    def kind(self) -> str:
        return next(kind for kind, names in _LAYOUTS.items() if names == tuple(self.feature_names))

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "input_columns": list(self.input_columns),
            "feature_names": list(self.feature_names),
            "center": list(self.center),
            "scale": list(self.scale),
        }

    @classmethod
    def from_dict(cls, document: dict) -> Preprocessor:
        if document.get("kind") not in _LAYOUTS:
            raise ValueError(f"unknown preprocessing kind {document.get('kind')!r}")
        if tuple(document["feature_names"]) != _LAYOUTS[document["kind"]]:
            raise ValueError(f"feature_names do not match the preprocessing kind {document['kind']!r}")
        return cls(
            center=tuple(float(v) for v in document["center"]),
            scale=tuple(float(v) for v in document["scale"]),
            feature_names=tuple(document["feature_names"]),
            input_columns=tuple(document["input_columns"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Preprocessor:
        return cls.from_dict(json.loads(text))


def fit_preprocessor(train: pd.DataFrame) -> Preprocessor:
    """Fit on the training split only, so validation and test stay unseen."""
    unscaled = unscaled_features(train)
    return _standardising(unscaled.mean(axis=0), unscaled.std(axis=0))


def unscaled_features(frame: pd.DataFrame) -> np.ndarray:
    """The standardised features before standardising, in float64: what the statistics are of."""
    identity = Preprocessor(center=(0.0,) * _N_STANDARDISED, scale=(1.0,) * _N_STANDARDISED,
                            feature_names=STANDARDISED_FEATURES)
    return identity.transform_frame(frame).astype(np.float64)


def _add_distance_features(out: np.ndarray) -> None:
    """Fill DISTANCE_FEATURES' columns from the standardised components, block by block."""
    distance_at, deviation_at = _N_STANDARDISED, _N_STANDARDISED + 1
    for start in range(0, out.shape[0], _DISTANCE_BLOCK_ROWS):
        block = out[start:start + _DISTANCE_BLOCK_ROWS]
        components = block[:, :_N_PCA]
        block[:, distance_at] = np.log1p(np.einsum("ij,ij->i", components, components))
        block[:, deviation_at] = np.log1p(np.abs(components)).sum(axis=1)


def preprocessor_from_moments(rows: int, sums: np.ndarray, squares: np.ndarray) -> Preprocessor:
    """The same fit from sums gathered piece by piece (a Dask cluster's partitions): the
    training split never has to sit in one process."""
    if rows < 1:
        raise ValueError("cannot fit preprocessing on no rows")
    mean = np.asarray(sums, dtype=np.float64) / rows
    mean_square = np.asarray(squares, dtype=np.float64) / rows
    variance = np.maximum(mean_square - mean**2, 0.0)
    # E[x²] − E[x]² keeps the rounding noise of the sums (2e-14·E[x²] measured on two partitions
    # of 1,000 rows; it grows with rows and partitions): a constant column's variance comes out
    # as that noise, not 0, and would be divided by (one process's np.std gives exactly 0). A
    # spread below 3e-5 of the column's magnitude is taken for none.
    noise = 1e-9 * mean_square
    return _standardising(mean, np.sqrt(np.where(variance > noise, variance, 0.0)))


def _standardising(center: np.ndarray, scale: np.ndarray) -> Preprocessor:
    # A constant column (e.g. a tiny split within one hour) must not divide by zero.
    scale = np.where(scale > 1e-12, scale, 1.0)
    return Preprocessor(center=tuple(center.tolist()), scale=tuple(scale.tolist()))
