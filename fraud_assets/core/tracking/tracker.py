"""Training runs and serving aliases in MLflow, through ``MlflowClient`` (no global state).

MLflow is imported on first use only: ``fraud score`` and ``fraud serve`` never load it.

Tracking never costs a model or a promotion. When the store cannot be reached, the model is
still saved and its manifest's ``tracking`` section records the error instead of a run id;
a pointer change still happens and the alias is set right at the next change (or with
``fraud model sync-aliases``). The registry, not MLflow, says what serves: MLflow mirrors it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

from fraud_assets.core.tracking import run_content

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraud_assets.core.model.bundle import FraudModel
    from fraud_assets.core.model.registry import ModelRegistry

log = logging.getLogger(__name__)
T = TypeVar("T")

BUNDLE_ARTIFACT = "bundle"
ALIASES = {"champion": "production", "challenger": "challenger"}
_TRIAL_STATUS = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}
# An unreachable server should cost seconds, not MLflow's default minutes of retries.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def shown_uri(uri: str) -> str:
    """The tracking URI without a password, fit for a manifest or a log line."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


@dataclass(frozen=True)
class Tracker:
    uri: str
    experiment: str
    model_name: str
    # Where a new experiment keeps artifacts; None: the store's default (the server's).
    artifact_location: str | None = None

    def client(self) -> MlflowClient:
        for name, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if self.uri.startswith("sqlite:///"):
            # SQLite creates the database file, not its folder.
            os.makedirs(os.path.dirname(self.uri.removeprefix("sqlite:///")), exist_ok=True)
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def experiment_id(self, client: MlflowClient) -> str:
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(self.experiment, artifact_location=self.artifact_location)
        except Exception:
            found = client.get_experiment_by_name(self.experiment)  # another run created it first
            if found is None:
                raise
            return found.experiment_id

    # Training runs -------------------------------------------------------------------
    def track_training(self, model: FraudModel, save: Callable[[], T]) -> T:
        """Start a run, record its id in the manifest, ``save()`` the model, then log the
        bundle and register it. A tracking failure is a warning, never a lost model."""
        try:
            client = self.client()
            run_id = self._start_run(client, model)
        except Exception as error:
            log.warning("model %s saved without an MLflow run: tracking at %s failed: %s",
                        model.version, shown_uri(self.uri), error)
            model.manifest["tracking"] = {"uri": shown_uri(self.uri), "error": f"{type(error).__name__}: {error}"}
            return save()
        model.manifest["tracking"] = {"uri": shown_uri(self.uri), "experiment": self.experiment, "run_id": run_id}
        saved = save()
        try:
            self._finish_run(client, model, run_id)
        except Exception as error:
            log.warning("model %s: MLflow run %s is incomplete (%s)", model.version, run_id, error)
            _quietly(lambda: client.set_terminated(run_id, status="FAILED"))
        return saved

    def _start_run(self, client: MlflowClient, model: FraudModel) -> str:
        manifest = {**model.manifest, "version": model.version, "threshold": model.threshold}
        experiment_id = self.experiment_id(client)
        run = client.create_run(experiment_id, run_name=model.version, tags=run_content.data_tags(manifest))
        run_id = run.info.run_id
        self._log(client, run_id, run_content.training_params(manifest), run_content.training_metrics(manifest))
        for trial in run_content.search_trials(manifest):
            self._log_trial(client, experiment_id, run_id, trial)
        return run_id

    @staticmethod
    def _log(client: MlflowClient, run_id: str, params: dict, metrics: dict, tags: dict | None = None) -> None:
        import time

        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
            params=[Param(key, value) for key, value in params.items()],
            tags=[RunTag(key, value) for key, value in (tags or {}).items()],
        )

    def _log_trial(self, client: MlflowClient, experiment_id: str, parent_id: str, trial: dict) -> None:
        number = trial.get("number")
        child = client.create_run(
            experiment_id, run_name=f"trial {number}",
            tags={"mlflow.parentRunId": parent_id, "fraud.trial_state": str(trial.get("state"))},
        )
        metrics = {name: trial[key] for name, key in (("objective", "value"), ("seconds", "seconds"))
                   if run_content._finite(trial.get(key))}
        params = run_content.flat_params(trial.get("params") or {})
        self._log(client, child.info.run_id, {**params, "trial_number": str(number)}, metrics)
        client.set_terminated(child.info.run_id, status=_TRIAL_STATUS.get(str(trial.get("state")), "FINISHED"))

    def _finish_run(self, client: MlflowClient, model: FraudModel, run_id: str) -> None:
        import fsspec

        with tempfile.TemporaryDirectory(prefix="fraud-bundle-") as folder:
            # The bundle as saved, written again locally: the registry may be on S3.
            model.save(fsspec.filesystem("file"), folder)
            for name in run_content.PICTURE_FILES:
                if os.path.exists(os.path.join(folder, name)):
                    client.log_artifact(run_id, os.path.join(folder, name))
            client.log_artifacts(run_id, folder, BUNDLE_ARTIFACT)
        self._ensure_registered_model(client)
        source = f"{client.get_run(run_id).info.artifact_uri}/{BUNDLE_ARTIFACT}"
        client.create_model_version(self.model_name, source, run_id=run_id,
                                    tags={"fraud.model_version": model.version})
        client.set_terminated(run_id, status="FINISHED")

    def _ensure_registered_model(self, client: MlflowClient) -> None:
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(self.model_name)
        except MlflowException as error:
            if not _missing(error):
                raise
            try:
                client.create_registered_model(self.model_name)
            except MlflowException:
                client.get_registered_model(self.model_name)  # created meanwhile, else raise

    # Aliases -------------------------------------------------------------------------
    def sync_aliases(self, registry: ModelRegistry) -> dict[str, str | None]:
        """Point ``champion`` and ``challenger`` at the MLflow versions of the registry's
        production and challenger models; an alias whose model has no run is removed.
        Returns alias -> MLflow model version (None: removed)."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            client.get_registered_model(self.model_name)
        except MlflowException as error:
            if _missing(error):
                return {}  # nothing tracked was ever registered: no alias can exist
            raise
        pointed = {"production": registry.production_version(), "challenger": registry.challenger_version()}
        result = {}
        for alias, role in ALIASES.items():
            number = self._mlflow_version(client, registry, pointed[role])
            if number is None:
                _quietly(lambda a=alias: client.delete_registered_model_alias(self.model_name, a))
            else:
                client.set_registered_model_alias(self.model_name, alias, number)
            result[alias] = number
        return result

    def _mlflow_version(self, client: MlflowClient, registry: ModelRegistry, version: str | None) -> str | None:
        if version is None:
            return None
        run_id = (registry.manifest(version).get("tracking") or {}).get("run_id")
        if not run_id:
            return None
        found = client.search_model_versions(f"name = '{self.model_name}' and run_id = '{run_id}'")
        # MLflow's clients disagree on the type (int from some stores, str from others).
        return str(found[0].version) if found else None

    def pointer_follower(self) -> Callable[[ModelRegistry], None]:
        """For ``ModelRegistry(on_pointer_change=...)``: aliases follow, failures only warn."""
        def follow(registry: ModelRegistry) -> None:
            try:
                self.sync_aliases(registry)
            except Exception as error:
                log.warning("MLflow aliases not updated at %s (%s); `fraud model sync-aliases` "
                            "sets them once tracking is back", shown_uri(self.uri), error)
        return follow


def _missing(error) -> bool:
    return getattr(error, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as error:
        log.debug("ignored: %s", error)
