"""The deployable model: an XGBoost booster plus everything needed to use it correctly.

A bundle is a folder of three files: ``model.ubj`` (XGBoost's native format), and
``preprocessing.json`` and ``manifest.json`` (threshold, metrics, drift reference). None of
them is executed when loaded.
"""

from __future__ import annotations

import json
import math
import posixpath
from dataclasses import dataclass, field

import fsspec
import numpy as np
import xgboost as xgb

from fraud_assets.core.features import Preprocessor
from fraud_assets.core.storage import write_bytes_atomic, write_json_atomic

MODEL_FILE = "model.ubj"
PREPROCESSING_FILE = "preprocessing.json"
MANIFEST_FILE = "manifest.json"


@dataclass
class FraudModel:
    version: str
    booster: xgb.Booster
    preprocessor: Preprocessor
    threshold: float
    # Training up-weights frauds, which inflates the odds by that weight; subtracting its log
    # from the margin restores probabilities on the real prevalence scale.
    log_odds_correction: float = 0.0
    manifest: dict = field(default_factory=dict)

    def margin(self, raw_features: np.ndarray) -> np.ndarray:
        features = self.preprocessor.transform(raw_features)
        return self.booster.inplace_predict(features, predict_type="margin")

    def predict_proba(self, raw_features: np.ndarray) -> np.ndarray:
        """Fraud probability for a float32 matrix in ``Preprocessor.input_columns`` order."""
        margin = np.asarray(self.margin(raw_features), dtype=np.float64) - self.log_odds_correction
        return (1.0 / (1.0 + np.exp(-margin))).astype(np.float32)

    def contributions(self, raw_features: np.ndarray) -> np.ndarray:
        """Per-feature contributions to the margin (XGBoost's own SHAP values); last column is bias."""
        features = self.preprocessor.transform(raw_features)
        matrix = xgb.DMatrix(features, feature_names=list(self.preprocessor.feature_names))
        return self.booster.predict(matrix, pred_contribs=True)

    def save(self, fs: fsspec.AbstractFileSystem, directory: str) -> None:
        """Write the bundle; the manifest goes last, so a folder without one is incomplete."""
        write_bytes_atomic(fs, posixpath.join(directory, MODEL_FILE), bytes(self.booster.save_raw("ubj")))
        write_bytes_atomic(
            fs, posixpath.join(directory, PREPROCESSING_FILE), self.preprocessor.to_json().encode()
        )
        manifest = {
            **self.manifest,
            "version": self.version,
            "threshold": self.threshold,
            "log_odds_correction": self.log_odds_correction,
            "files": [MODEL_FILE, PREPROCESSING_FILE],
        }
        write_json_atomic(fs, posixpath.join(directory, MANIFEST_FILE), manifest)

    @classmethod
    def load(cls, fs: fsspec.AbstractFileSystem, directory: str) -> FraudModel:
        with fs.open(posixpath.join(directory, MANIFEST_FILE), "rb") as handle:
            manifest = json.load(handle)
        with fs.open(posixpath.join(directory, PREPROCESSING_FILE), "rb") as handle:
            preprocessor = Preprocessor.from_json(handle.read())
        booster = xgb.Booster()
        with fs.open(posixpath.join(directory, MODEL_FILE), "rb") as handle:
            booster.load_model(bytearray(handle.read()))
        return cls(
            version=manifest["version"],
            booster=booster,
            preprocessor=preprocessor,
            threshold=float(manifest["threshold"]),
            log_odds_correction=float(manifest.get("log_odds_correction", 0.0)),
            manifest=manifest,
        )

    @property
    def metrics(self) -> dict:
        return self.manifest.get("metrics", {})

    @property
    def drift_reference(self) -> dict:
        return self.manifest.get("drift_reference", {})


def log_odds_correction_for(scale_pos_weight: float) -> float:
    return math.log(scale_pos_weight) if scale_pos_weight > 0 else 0.0
