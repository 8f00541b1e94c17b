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
MODEL_FEATURES: tuple[str, ...] = (*PCA_COLUMNS, "log_amount", "hour_sin", "hour_cos")


@dataclass(frozen=True)
class Preprocessor:
    """Standardises the model features with statistics of the training split."""

    center: tuple[float, ...]
    scale: tuple[float, ...]
    # Stored in the JSON so that a reader sees what the numbers mean; ``transform`` computes
    # exactly these, so a file that names anything else is refused rather than misapplied.
    feature_names: tuple[str, ...] = MODEL_FEATURES
    input_columns: tuple[str, ...] = FEATURE_COLUMNS

    def __post_init__(self) -> None:
        if tuple(self.input_columns) != FEATURE_COLUMNS:
            raise ValueError(f"input_columns must be {', '.join(FEATURE_COLUMNS)} in that order")
        if tuple(self.feature_names) != MODEL_FEATURES:
            raise ValueError(f"feature_names must be {', '.join(MODEL_FEATURES)} in that order")
        if not len(self.center) == len(self.scale) == len(MODEL_FEATURES):
            raise ValueError(f"center and scale need {len(MODEL_FEATURES)} values each")
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
        out -= np.asarray(self.center, dtype=np.float32)
        out *= np.asarray([1.0 / s for s in self.scale], dtype=np.float32)
        return out

    def transform_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transform(feature_matrix(frame))

    def to_dict(self) -> dict:
        return {
            "kind": "standardize-v1",
            "input_columns": list(self.input_columns),
            "feature_names": list(self.feature_names),
            "center": list(self.center),
            "scale": list(self.scale),
        }

    @classmethod
    def from_dict(cls, document: dict) -> Preprocessor:
        if document.get("kind") != "standardize-v1":
            raise ValueError(f"unknown preprocessing kind {document.get('kind')!r}")
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
    """The model features before standardising, in float64: what the statistics are of."""
    identity = Preprocessor(center=(0.0,) * len(MODEL_FEATURES), scale=(1.0,) * len(MODEL_FEATURES))
    return identity.transform_frame(frame).astype(np.float64)


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
