"""The model in service, replaced without a restart when the production pointer moves.

A request reads ``holder.current`` once and uses that object to the end, so a swap never
mixes two models in one response, and the old model stays alive until its last request
finishes. The new model is loaded and warmed up completely before the single reference
assignment that publishes it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from fraud_assets.core.data.schema import FEATURE_COLUMNS
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.registry import ModelRegistry

log = logging.getLogger(__name__)


class NoProductionModel(RuntimeError):
    pass


@dataclass(frozen=True)
class ServingModel:
    model: FraudModel
    loaded_at: datetime
    # Names as a numpy array so the top contributions of a whole batch are one fancy index.
    feature_names: np.ndarray

    @property
    def version(self) -> str:
        return self.model.version

    @classmethod
    def wrap(cls, model: FraudModel) -> ServingModel:
        # Probabilities (the native predictor) follow each calling thread's XGBoost
        # configuration already (predict.score); this makes the package's booster, used for
        # approximate contributions and the exact fallback, do the same. Set before the model
        # is shared, since set_param must not race with predictions.
        model.booster.set_param({"nthread": 0})
        _warm_up(model)
        names = np.asarray(model.preprocessor.feature_names, dtype=object)
        return cls(model=model, loaded_at=datetime.now(UTC), feature_names=names)


def _warm_up(model: FraudModel) -> None:
    """Pay first-use costs before serving, not in a request: XGBoost's caches, and the
    contribution tables (built and checked against XGBoost's own values)."""
    row = np.zeros((1, len(FEATURE_COLUMNS)), dtype=np.float32)
    model.predict_proba(row)
    model.contributions(row)


class ModelHolder:
    def __init__(self, registry: ModelRegistry, model: FraudModel | None = None):
        self.registry = registry
        if model is None:
            model = registry.load_production()
            if model is None:
                raise NoProductionModel(
                    f"no production model in {registry.location.url_of()}: train one, add it "
                    "(`fraud model add DIR`) and promote it (`fraud model promote VERSION`)"
                )
        self._current = ServingModel.wrap(model)
        self.reload_failures = 0
        self.last_check: datetime | None = None
        self.last_error: str | None = None
        # (version, error) of the last failed reload: a repeat of it is not logged again.
        self._last_failure: tuple[str | None, str] | None = None
        self._lock = threading.Lock()  # one refresh at a time, whoever calls it

    @property
    def current(self) -> ServingModel:
        return self._current

    def refresh(self) -> bool:
        """Load the production model if the pointer moved; True if a new one now serves.

        Any failure (registry unreachable, incomplete bundle) keeps the current model.
        """
        with self._lock:
            self.last_check = datetime.now(UTC)
            version = None
            try:
                version = self.registry.production_version()
                if version is None or version == self._current.version:
                    return False
                log.info("production pointer moved to %s; loading it", version)
                fresh = ServingModel.wrap(self.registry.load(version))
            except Exception as error:  # noqa: BLE001 - a bad reload must not stop serving
                self.reload_failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                # Retried at every check until it loads or the pointer moves: the traceback
                # once, then the count (metrics) and the error (/health) tell the rest.
                if self._last_failure != (version, self.last_error):
                    log.exception("model reload failed; still serving %s", self._current.version)
                else:
                    log.debug("model %s still fails to load: %s", version, self.last_error)
                self._last_failure = (version, self.last_error)
                return False
            previous, self._current = self._current.version, fresh
            self.last_error = None
            self._last_failure = None
            log.info("now serving model %s (was %s)", fresh.version, previous)
            return True

    async def watch(self, interval: float) -> None:
        """Check the pointer every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            # Registry reads and model loading block (S3, file I/O, parsing): off the loop.
            await asyncio.to_thread(self.refresh)
