"""Resources: where data lives, quality bars, and the outside services runs report to.

Every setting is read here and nowhere else. ``FRAUD_ENV`` picks local disk (the default)
or S3; values come from the environment through :class:`dagster.EnvVar`, so the UI shows the
variable's name rather than its value.
"""

import os
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from fraud_assets.core import alerts, telemetry
from fraud_assets.core.gate import GateResult, evaluate_gate
from fraud_assets.core.model import FraudModel
from fraud_assets.core.registry import ModelRegistry
from fraud_assets.core.storage import Location, s3_storage_options
from fraud_assets.core.tables import DEFAULT_CHUNK_ROWS

DEFAULT_BUCKETS = {
    "FRAUD_DATA_BUCKET": "card-fraud-prod-data",
    "FRAUD_MODELS_BUCKET": "card-fraud-prod-models",
    "FRAUD_PREDICTIONS_BUCKET": "card-fraud-prod-predictions",
    "FRAUD_BACKUP_BUCKET": "card-fraud-prod-backups",
}


def fraud_env() -> str:
    env = os.environ.get("FRAUD_ENV", "local").strip().lower() or "local"
    if env not in ("local", "production"):
        raise ValueError(f"FRAUD_ENV must be 'local' or 'production', not {env!r}")
    return env


def setting(name: str, default: str | None = None):
    """The variable as an EnvVar when it is set, else the documented default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def local_root() -> Path:
    return Path(os.environ.get("FRAUD_LOCAL_DIR") or Path.cwd()).resolve()


class FraudStorage(dg.ConfigurableResource):
    """The three stores of the platform: data, models (the registry) and predictions."""

    data_url: str = Field(description="Root of the data store: raw/, incoming/, assets/ ...")
    models_url: str = Field(description="Root of the model registry (one folder per version).")
    predictions_url: str = Field(description="Root under which daily predictions are written.")
    backup_url: str | None = Field(default=None, description="Root for model backups.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint.")
    aws_region: str | None = None
    kms_key_id: str | None = Field(default=None, description="Encrypt with this KMS key, not AES256.")

    def _location(self, url: str) -> Location:
        if url.startswith("s3://"):
            options = s3_storage_options(
                endpoint_url=self.s3_endpoint_url, region=self.aws_region, kms_key_id=self.kms_key_id
            )
            return Location(url, options)
        return Location(url)

    def data(self) -> Location:
        return self._location(self.data_url)

    def models(self) -> Location:
        return self._location(self.models_url)

    def predictions(self) -> Location:
        return self._location(self.predictions_url)

    def backup(self) -> Location:
        if not self.backup_url:
            raise ValueError("no backup location configured (FRAUD_BACKUP_BUCKET)")
        return self._location(self.backup_url)

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.models())


class DatasetSettings(dg.ConfigurableResource):
    """Where the labelled dataset and the batch files sit inside the data store."""

    raw_dataset_key: str = "raw/creditcard.csv"
    incoming_prefix: str = "incoming"
    processed_prefix: str = "processed"
    quarantine_prefix: str = "quarantine"
    scoring_chunk_rows: int = DEFAULT_CHUNK_ROWS


class QualityGate(dg.ConfigurableResource):
    """The bar a newly trained model must clear before it serves."""

    auprc_floor: float = Field(default=0.5, description="Minimum test-split AUPRC.")
    max_auprc_regression: float = Field(
        default=0.02, description="Largest allowed AUPRC drop against the production model."
    )
    min_prevalence: float = Field(default=0.0001, description="Plausible fraud share, low end.")
    max_prevalence: float = Field(default=0.05, description="Plausible fraud share, high end.")

    def evaluate(self, candidate: FraudModel, production: FraudModel | None, test: pd.DataFrame) -> GateResult:
        return evaluate_gate(
            candidate,
            production,
            test,
            auprc_floor=self.auprc_floor,
            max_regression=self.max_auprc_regression,
        )


class DriftSettings(dg.ConfigurableResource):
    psi_moderate: float = 0.1
    psi_major: float = 0.25
    wasserstein: float = 0.1
    drift_share: float = 0.5


def storage_for(env: str) -> FraudStorage:
    if env == "production":
        buckets = bucket_names()
        return FraudStorage(
            data_url=f"s3://{buckets['data']}",
            models_url=f"s3://{buckets['models']}/models",
            predictions_url=f"s3://{buckets['predictions']}/predictions",
            backup_url=f"s3://{buckets['backups']}/backups",
            # Plain values, not EnvVar: the CLI builds this resource outside Dagster, and
            # none of these is a secret.
            s3_endpoint_url=os.environ.get("FRAUD_S3_ENDPOINT_URL") or None,
            aws_region=_aws_region(),
            kms_key_id=os.environ.get("FRAUD_KMS_KEY_ID") or None,
        )
    root = local_root()
    return FraudStorage(
        data_url=str(root / "data"),
        models_url=str(root / "models"),
        predictions_url=str(root / "data" / "predictions"),
        backup_url=str(root / "backups"),
    )


def _aws_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def gate_from_env() -> QualityGate:
    """The gate with FRAUD_AUPRC_FLOOR / FRAUD_MAX_AUPRC_REGRESSION where set; defaults
    are the resource's own."""
    overrides = {
        field: float(os.environ[variable])
        for field, variable in (
            ("auprc_floor", "FRAUD_AUPRC_FLOOR"),
            ("max_auprc_regression", "FRAUD_MAX_AUPRC_REGRESSION"),
        )
        if os.environ.get(variable)
    }
    return QualityGate(**overrides)


class MetricsPusher(dg.ConfigurableResource):
    """Pushes run results to the Prometheus Pushgateway; without a URL it only logs."""

    pushgateway_url: str | None = Field(default=None, description="FRAUD_PUSHGATEWAY_URL")

    def scoring(self, **values) -> bool:
        return telemetry.push_scoring_metrics(self.pushgateway_url, **values)

    def training(self, **values) -> bool:
        return telemetry.push_training_metrics(self.pushgateway_url, **values)

    def drift(self, **values) -> bool:
        return telemetry.push_drift_metrics(self.pushgateway_url, **values)

    def training_outcome(self, model: FraudModel, gate: GateResult) -> bool:
        """What a training run produced and whether its model now serves."""
        return self.training(
            auprc=gate.candidate_auprc,
            roc_auc=model.metrics["test"]["roc_auc"],
            threshold=model.threshold,
            seconds=model.manifest["training"]["training_seconds"],
            model_version=model.version,
            gate_passed=gate.passed,
            production_version=model.version if gate.passed else gate.production_version,
        )

    def run_failed(self, job: str) -> bool:
        return telemetry.push_run_failure(self.pushgateway_url, job)


class SlackAlerts(dg.ConfigurableResource):
    """Posts alerts to a Slack incoming webhook; without a URL it only logs."""

    webhook_url: str | None = Field(default=None, description="FRAUD_SLACK_WEBHOOK_URL")

    def post(self, text: str) -> bool:
        return alerts.post_slack_message(self.webhook_url, text)


def bucket_names() -> dict[str, str]:
    """Bucket names by role, from the environment or the deployment guide's defaults."""
    return {
        role: os.environ.get(variable) or DEFAULT_BUCKETS[variable]
        for role, variable in (
            ("data", "FRAUD_DATA_BUCKET"),
            ("models", "FRAUD_MODELS_BUCKET"),
            ("predictions", "FRAUD_PREDICTIONS_BUCKET"),
            ("backups", "FRAUD_BACKUP_BUCKET"),
        )
    }


def s3_client():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("FRAUD_S3_ENDPOINT_URL") or None,
        region_name=_aws_region(),
    )
