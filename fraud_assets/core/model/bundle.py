"""The deployable model: an XGBoost booster plus everything needed to use it correctly.

A bundle is a folder of three files: ``model.ubj`` (XGBoost's native format), and
``preprocessing.json`` and ``manifest.json`` (threshold, metrics, drift reference). None of
them is executed when loaded.

Probabilities come from XGBoost's C library directly (:mod:`fraud_assets.core.model.xgboost_runtime`).
Exact contributions come from tables built per model (:mod:`fraud_assets.core.model.tree_shap`),
checked against XGBoost's own when first used; the ``xgboost`` package, which takes seconds
to import, is loaded only for that check and for approximate contributions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import fsspec
import numpy as np

from fraud_assets.core.data.features import Preprocessor
from fraud_assets.core.model import pictures
from fraud_assets.core.model.calibration import Calibration
from fraud_assets.core.model.tree_shap import TreeShapTables, UnsupportedModel
from fraud_assets.core.model.xgboost_runtime import NativeBooster
from fraud_assets.core.storage.locations import write_bytes_atomic, write_json_atomic

if TYPE_CHECKING:
    import xgboost as xgb

MODEL_FILE = "model.ubj"
PREPROCESSING_FILE = "preprocessing.json"
MANIFEST_FILE = "manifest.json"
PR_CURVE_FILE = "pr_curve.svg"
RELIABILITY_FILE = "reliability.svg"

log = logging.getLogger(__name__)

# Rows on which the tables are compared with XGBoost's own contributions before first use:
# standardised features, spread wide enough to take both sides of most splits, some missing.
_CHECK_ROWS = 512
_CHECK_TOLERANCE = 1e-4  # relative to the largest contribution; float32 rounding is ~1e-6


@dataclass(frozen=True)
class _ExactContributions:
    tables: TreeShapTables
    bias: np.float32  # XGBoost's last column: the same for every row


@dataclass
class FraudModel:
    version: str
    # The booster serialised in XGBoost's UBJSON format: what is saved, and what both
    # predictors below are built from.
    booster_bytes: bytes = field(repr=False)
    preprocessor: Preprocessor
    threshold: float
    # Training up-weights frauds, which inflates the odds by that weight; subtracting its log
    # from the margin restores probabilities on the real prevalence scale.
    log_odds_correction: float = 0.0
    # Fitted on validation after training (calibration.py); the identity for older bundles.
    calibration: Calibration = field(default_factory=Calibration)
    manifest: dict = field(default_factory=dict)

    # Built on first use where the model is used, never carried: they hold native pointers,
    # which a pickle (a Dask worker handing the model to another) cannot take.
    _LOADED = ("predictor", "booster")

    def __getstate__(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if name not in self._LOADED}

    @functools.cached_property
    def predictor(self) -> NativeBooster:
        return NativeBooster(self.booster_bytes)

    @functools.cached_property
    def booster(self) -> xgb.Booster:
        """The ``xgboost`` package's booster, for contributions and introspection."""
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(self.booster_bytes))
        return booster

    def margin(self, raw_features: np.ndarray) -> np.ndarray:
        return self.predictor.predict_margin(self.preprocessor.transform(raw_features))

    def predict_proba(self, raw_features: np.ndarray) -> np.ndarray:
        """Fraud probability for a float32 matrix in ``Preprocessor.input_columns`` order."""
        margin = np.asarray(self.margin(raw_features), dtype=np.float64) - self.log_odds_correction
        margin = self.calibration.apply_to_log_odds(margin)
        return (1.0 / (1.0 + np.exp(-margin))).astype(np.float32)

    def contributions(self, raw_features: np.ndarray, *, approx: bool = False) -> np.ndarray:
        """Per-feature contributions to the margin; the last column is the bias.

        XGBoost's: exact TreeSHAP (``pred_contribs``), or with ``approx`` its path-based
        (Saabas) attribution, with the same sum but another split of credit. Exact values
        come from :class:`TreeShapTables` where the model allows, else from XGBoost itself.
        """
        features = self.preprocessor.transform(raw_features)
        exact = None if approx else self._exact_contributions
        if exact is None:
            return self._xgboost_contributions(features, approx=approx)
        result = np.empty((len(features), features.shape[1] + 1), dtype=np.float32)
        result[:, :-1] = exact.tables.shap_values(features)
        result[:, -1] = exact.bias
        return result

    def _xgboost_contributions(self, features: np.ndarray, *, approx: bool) -> np.ndarray:
        import xgboost as xgb

        matrix = xgb.DMatrix(features, feature_names=list(self.preprocessor.feature_names))
        return self.booster.predict(matrix, pred_contribs=True, approx_contribs=approx)

    @functools.cached_property
    def _exact_contributions(self) -> _ExactContributions | None:
        """The tables for this model, once they reproduce XGBoost's values; None: use XGBoost's."""
        try:
            tables = TreeShapTables.from_xgboost_json(json.loads(self.predictor.to_json()))
        except UnsupportedModel as reason:
            log.info("model %s: XGBoost computes exact contributions (%s)", self.version, reason)
            return None
        rng = np.random.default_rng(0)
        rows = rng.normal(scale=2.0, size=(_CHECK_ROWS, tables.num_features)).astype(np.float32)
        rows[rng.random(rows.shape) < 0.05] = np.nan
        with_bias = self._xgboost_contributions(rows, approx=False)
        expected = with_bias[:, :-1]
        error = float(np.abs(tables.shap_values(rows) - expected).max())
        # Written so that a NaN anywhere fails the check.
        if not error <= _CHECK_TOLERANCE * max(1.0, float(np.abs(expected).max())):
            log.warning(
                "model %s: contribution tables differ from XGBoost's by %.3g; using XGBoost's",
                self.version,
                error,
            )
            return None
        log.info(
            "model %s: exact contributions from tables (%d groups, %.1f MiB), %.2g from XGBoost's",
            self.version, len(tables.group_splits), tables.table_values.nbytes / 2**20, error,
        )
        return _ExactContributions(tables, np.float32(with_bias[0, -1]))

    def save(self, fs: fsspec.AbstractFileSystem, directory: str) -> None:
        """Write the bundle; the manifest goes last, so a folder without one is incomplete."""
        contents = {MODEL_FILE: self.booster_bytes, PREPROCESSING_FILE: self.preprocessor.to_json().encode()}
        if self.manifest.get("pr_curve_test"):
            contents[PR_CURVE_FILE] = self._pr_curve_svg().encode()
        reliability = self.manifest.get("calibration", {}).get("reliability_test")
        if reliability:
            contents[RELIABILITY_FILE] = pictures.reliability_svg(
                reliability, f"Reliability, test ({self.calibration.method} calibration)").encode()
        for name, data in contents.items():
            write_bytes_atomic(fs, posixpath.join(directory, name), data)
        manifest = {
            **self.manifest,
            "version": self.version,
            "threshold": self.threshold,
            "log_odds_correction": self.log_odds_correction,
            "calibration": {**self.manifest.get("calibration", {}), **self.calibration.to_dict()},
            "files": list(contents),
            # A copy made elsewhere (a backup, a replica in another region) is checked
            # against these before it serves.
            "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()},
        }
        write_json_atomic(fs, posixpath.join(directory, MANIFEST_FILE), manifest)

    def _pr_curve_svg(self) -> str:
        test = self.metrics.get("test", {})
        at_threshold = (test["recall"], test["precision"]) if "recall" in test else None
        title = f"Precision-recall, test (AUPRC {test.get('auprc', float('nan')):.3f})"
        return pictures.precision_recall_svg(self.manifest["pr_curve_test"], at_threshold, title)

    @classmethod
    def load(cls, fs: fsspec.AbstractFileSystem, directory: str) -> FraudModel:
        with fs.open(posixpath.join(directory, MANIFEST_FILE), "rb") as handle:
            manifest = json.load(handle)
        with fs.open(posixpath.join(directory, PREPROCESSING_FILE), "rb") as handle:
            preprocessor = Preprocessor.from_json(handle.read())
        with fs.open(posixpath.join(directory, MODEL_FILE), "rb") as handle:
            booster_bytes = handle.read()
        model = cls(
            version=manifest["version"],
            booster_bytes=booster_bytes,
            preprocessor=preprocessor,
            threshold=float(manifest["threshold"]),
            log_odds_correction=float(manifest.get("log_odds_correction", 0.0)),
            calibration=Calibration.from_dict(manifest.get("calibration")),
            manifest=manifest,
        )
        _ = model.predictor  # parse the booster now: a damaged file fails here, not mid-batch
        return model

    @property
    def metrics(self) -> dict:
        return self.manifest.get("metrics", {})

    @property
    def drift_reference(self) -> dict:
        return self.manifest.get("drift_reference", {})


def log_odds_correction_for(scale_pos_weight: float) -> float:
    return math.log(scale_pos_weight) if scale_pos_weight > 0 else 0.0
