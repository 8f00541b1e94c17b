"""Resources: where data lives, quality bars, and the outside services runs report to.

Settings are read by :mod:`fraud_assets.settings` (shared with the command line and the
service); these resources carry them into Dagster. Credentials go through
:class:`dagster.EnvVar`, so the UI shows the variable's name rather than its value.
"""

import contextlib
import dataclasses
import os

import dagster as dg
import pandas as pd
from pydantic import Field

from fraud_assets import settings
from fraud_assets.core.data.tables import DEFAULT_CHUNK_ROWS
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.gate import GateResult, HeldOutScores, evaluate_gate
from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.monitoring import alerts, telemetry
from fraud_assets.core.monitoring.verdict import DriftThresholds
from fraud_assets.core.storage.locations import Location


class FraudStorage(dg.ConfigurableResource):
    """The three stores of the platform: data, models (the registry) and predictions."""

    data_url: str = Field(description="Root of the data store: raw/, incoming/, assets/ ...")
    models_url: str = Field(description="Root of the model registry (one folder per version).")
    predictions_url: str = Field(description="Root under which daily predictions are written.")
    backup_url: str | None = Field(default=None, description="Root for model backups.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint.")
    aws_region: str | None = None
    kms_key_id: str | None = Field(default=None, description="Encrypt with this KMS key, not AES256.")

    @classmethod
    def from_urls(cls, urls: settings.StoreUrls) -> "FraudStorage":
        return cls(**dataclasses.asdict(urls))

    def urls(self) -> settings.StoreUrls:
        return settings.StoreUrls(
            data_url=self.data_url,
            models_url=self.models_url,
            predictions_url=self.predictions_url,
            backup_url=self.backup_url,
            s3_endpoint_url=self.s3_endpoint_url,
            aws_region=self.aws_region,
            kms_key_id=self.kms_key_id,
        )

    def data(self) -> Location:
        return self.urls().data()

    def models(self) -> Location:
        return self.urls().models()

    def predictions(self) -> Location:
        return self.urls().predictions()

    def challenger_predictions(self) -> Location:
        return self.urls().challenger_predictions()

    def backup(self) -> Location:
        return self.urls().backup()

    def registry(self) -> ModelRegistry:
        return self.urls().registry()


class DatasetSettings(dg.ConfigurableResource):
    """Where the labelled dataset and the batch files sit inside the data store."""

    raw_dataset_key: str = "raw/creditcard.csv"
    incoming_prefix: str = "incoming"
    processed_prefix: str = "processed"
    quarantine_prefix: str = "quarantine"
    labels_prefix: str = "labels"
    """Label files land here; applied ones move to ``<labels_prefix>/processed/``."""
    scoring_chunk_rows: int = DEFAULT_CHUNK_ROWS
    stale_temporary_seconds: int = settings.MAX_RUN_SECONDS
    """Temporaries older than this were orphaned by a killed run and are removed."""


class QualityGate(dg.ConfigurableResource):
    """The bar a newly trained model must clear before it serves."""

    auprc_floor: float = Field(
        default=settings.AUPRC_FLOOR_DEFAULT, description="Minimum test-split AUPRC."
    )
    max_auprc_regression: float = Field(
        default=settings.MAX_AUPRC_REGRESSION_DEFAULT,
        description="Largest allowed AUPRC drop against the production model.",
    )
    max_calibration_error: float = Field(
        default=settings.MAX_CALIBRATION_ERROR_DEFAULT,
        description="Largest allowed test-split expected calibration error of the probabilities.",
    )
    min_prevalence: float = Field(default=0.0001, description="Plausible fraud share, low end.")
    max_prevalence: float = Field(default=0.05, description="Plausible fraud share, high end.")

    def evaluate(
        self, candidate: FraudModel, production: FraudModel | None, test: pd.DataFrame | HeldOutScores
    ) -> GateResult:
        return evaluate_gate(
            candidate,
            production,
            test,
            auprc_floor=self.auprc_floor,
            max_regression=self.max_auprc_regression,
            max_calibration_error=self.max_calibration_error,
        )


class DriftSettings(dg.ConfigurableResource):
    """The drift verdict's bounds (fraud_assets/core/monitoring/verdict.py explains them)."""

    psi_moderate: float = DriftThresholds.psi_moderate
    psi_major: float = DriftThresholds.psi_major
    wasserstein: float = DriftThresholds.wasserstein
    wasserstein_major: float = DriftThresholds.wasserstein_major
    moderate_share: float = DriftThresholds.moderate_share
    major_share: float = DriftThresholds.major_share
    alpha: float = DriftThresholds.alpha

    def thresholds(self) -> DriftThresholds:
        return DriftThresholds(**{name: getattr(self, name) for name in DriftThresholds.__dataclass_fields__})


class DaskCluster(dg.ConfigurableResource):
    """The Dask scheduler that trains and bulk-scores (``FRAUD_DASK_SCHEDULER``); without an
    address everything runs in the run's own process and Dask is never imported."""

    scheduler: str | None = Field(default=None, description="FRAUD_DASK_SCHEDULER, e.g. tcp://10.0.0.5:8786")

    @property
    def configured(self) -> bool:
        return bool(self.scheduler)

    @contextlib.contextmanager
    def client(self):
        """A client of the scheduler, the default one while it is open (``.compute()`` looks
        for it); :class:`ClusterUnavailable` when none answers."""
        if not self.scheduler:
            raise ValueError("no Dask scheduler configured (FRAUD_DASK_SCHEDULER)")
        from fraud_assets.core.cluster.client import cluster_client

        with cluster_client(self.scheduler) as connected:
            yield connected


def storage_for(env: str) -> FraudStorage:
    # Plain values, not EnvVar: none is a secret, and the UI shows where the data lives.
    return FraudStorage.from_urls(settings.store_urls(env))


def setting(name: str, default: str | None = None):
    """The variable as an EnvVar when it is set, else ``default``: the UI then shows the
    variable's name rather than its value (webhook URLs are credentials)."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def gate_from_env() -> QualityGate:
    return QualityGate(
        auprc_floor=settings.auprc_floor(), max_auprc_regression=settings.max_auprc_regression(),
        max_calibration_error=settings.max_calibration_error(),
    )


class MetricsPusher(dg.ConfigurableResource):
    """Pushes run results to the Prometheus Pushgateway; without a URL it only logs."""

    pushgateway_url: str | None = Field(default=None, description="FRAUD_PUSHGATEWAY_URL")

    def scoring(self, **values) -> bool:
        return telemetry.push_scoring_metrics(self.pushgateway_url, **values)

    def training(self, **values) -> bool:
        return telemetry.push_training_metrics(self.pushgateway_url, **values)

    def drift(self, **values) -> bool:
        return telemetry.push_drift_metrics(self.pushgateway_url, **values)

    def realized_performance(self, **values) -> bool:
        """Realised figures of one matured transaction day for one model role."""
        return telemetry.push_realized_performance(self.pushgateway_url, **values)

    def training_outcome(
        self, model: FraudModel, gate: GateResult, serving_version: str | None = None
    ) -> bool:
        """What a training run produced and which model serves after it (a model that passed
        the gate serves at once only when nothing served before; else it is the challenger)."""
        return self.training(
            auprc=gate.candidate_auprc,
            roc_auc=model.metrics["test"]["roc_auc"],
            threshold=model.threshold,
            seconds=model.manifest["training"]["training_seconds"],
            model_version=model.version,
            gate_passed=gate.passed,
            production_version=serving_version or gate.production_version,
        )

    def run_failed(self, job: str) -> bool:
        return telemetry.push_run_failure(self.pushgateway_url, job)


class SlackAlerts(dg.ConfigurableResource):
    """Posts alerts to a Slack incoming webhook; without a URL it only logs."""

    webhook_url: str | None = Field(default=None, description="FRAUD_SLACK_WEBHOOK_URL")

    def post(self, text: str) -> bool:
        return alerts.post_slack_message(self.webhook_url, text)
