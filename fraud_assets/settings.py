"""Every setting of the platform, read from the environment in this one module.

Plain Python, no Dagster: the Dagster resources, the ``fraud`` command and the scoring
service all read their settings here, so ``fraud serve`` starts without importing the code
location. ``FRAUD_ENV`` is the one switch between local disk (the default) and S3.
"""

from __future__ import annotations

import math
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fraud_assets.core.storage.locations import Location, s3_storage_options

if TYPE_CHECKING:
    from fraud_assets.core.model.registry import ModelRegistry

ENVIRONMENTS = ("local", "production")
CHALLENGER_PREDICTIONS_FOLDER = "challenger_predictions"

# Bucket variables and the deployment guide's default names.
DEFAULT_BUCKETS = {
    "FRAUD_DATA_BUCKET": "card-fraud-prod-data",
    "FRAUD_MODELS_BUCKET": "card-fraud-prod-models",
    "FRAUD_PREDICTIONS_BUCKET": "card-fraud-prod-predictions",
    "FRAUD_BACKUP_BUCKET": "card-fraud-prod-backups",
}
_BUCKET_ROLES = (
    ("data", "FRAUD_DATA_BUCKET"),
    ("models", "FRAUD_MODELS_BUCKET"),
    ("predictions", "FRAUD_PREDICTIONS_BUCKET"),
    ("backups", "FRAUD_BACKUP_BUCKET"),
)


def fraud_env() -> str:
    env = os.environ.get("FRAUD_ENV", "local").strip().lower() or "local"
    if env not in ENVIRONMENTS:
        raise ValueError(f"FRAUD_ENV must be 'local' or 'production', not {env!r}")
    return env


EXECUTORS = ("in_process", "multiprocess", "ecs")


def executor_kind(env: str | None = None) -> str:
    """How a run executes its steps: ``FRAUD_EXECUTOR``, else one process locally and a
    process per step in production. ``ecs``: a task per step (needs the ECS run launcher)."""
    value = (os.environ.get("FRAUD_EXECUTOR") or "").strip().lower()
    if not value:
        return "multiprocess" if (env or fraud_env()) == "production" else "in_process"
    if value not in EXECUTORS:
        raise ValueError(f"FRAUD_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {value!r}")
    return value


def local_root() -> Path:
    return Path(os.environ.get("FRAUD_LOCAL_DIR") or Path.cwd()).resolve()


def bucket_names() -> dict[str, str]:
    """Bucket names by role, from the environment or the deployment guide's defaults."""
    return {role: os.environ.get(variable) or DEFAULT_BUCKETS[variable] for role, variable in _BUCKET_ROLES}


def aws_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def s3_endpoint_url() -> str | None:
    return os.environ.get("FRAUD_S3_ENDPOINT_URL") or None


def kms_key_id() -> str | None:
    return os.environ.get("FRAUD_KMS_KEY_ID") or None


def input_storage_options() -> dict:
    """How ``fraud train --data`` and ``fraud score --input`` reach ``s3://`` tables."""
    return s3_storage_options(endpoint_url=s3_endpoint_url(), region=aws_region(), kms_key_id=kms_key_id())


def dask_scheduler() -> str | None:
    """``FRAUD_DASK_SCHEDULER``: the Dask scheduler (``tcp://host:8786``) that trains and bulk-
    scores when set; unset, both run in this process and Dask is never imported."""
    return (os.environ.get("FRAUD_DASK_SCHEDULER") or "").strip() or None


def s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint_url(), region_name=aws_region())


# Disaster recovery: the models and backups buckets are replicated to a second region.
_REPLICATED_ROLES = (("models", "FRAUD_MODELS_REPLICA_BUCKET"), ("backups", "FRAUD_BACKUP_REPLICA_BUCKET"))


def dr_region() -> str | None:
    return os.environ.get("FRAUD_DR_REGION") or None


def dr_s3_endpoint_url() -> str | None:
    return os.environ.get("FRAUD_DR_S3_ENDPOINT_URL") or None


def dr_kms_key_id() -> str | None:
    """A KMS key lives in one region: the replicas need their own."""
    return os.environ.get("FRAUD_DR_KMS_KEY_ID") or None


def replication_role_arn() -> str | None:
    return os.environ.get("FRAUD_REPLICATION_ROLE_ARN") or None


def replica_bucket_names(region: str) -> dict[str, str]:
    """Replica bucket by role: ``FRAUD_*_REPLICA_BUCKET``, else the primary name plus the
    region (``card-fraud-prod-models-eu-west-1``), so one look at a name tells its region."""
    from fraud_assets.core.storage.replication import replica_bucket_name

    primary = bucket_names()
    return {
        role: os.environ.get(variable) or replica_bucket_name(primary[role], region)
        for role, variable in _REPLICATED_ROLES
    }


def dr_s3_client(region: str):
    import boto3

    return boto3.client("s3", endpoint_url=dr_s3_endpoint_url(), region_name=region)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {number}")
    return number


@dataclass(frozen=True)
class StoreUrls:
    """Where the platform's stores live: a local folder or an S3 prefix each."""

    data_url: str
    models_url: str
    predictions_url: str
    backup_url: str | None = None
    s3_endpoint_url: str | None = None
    aws_region: str | None = None
    kms_key_id: str | None = None

    def location(self, url: str) -> Location:
        if url.startswith("s3://"):
            options = s3_storage_options(
                endpoint_url=self.s3_endpoint_url, region=self.aws_region, kms_key_id=self.kms_key_id
            )
            return Location(url, options)
        return Location(url)

    def data(self) -> Location:
        return self.location(self.data_url)

    def models(self) -> Location:
        return self.location(self.models_url)

    def predictions(self) -> Location:
        return self.location(self.predictions_url)

    def challenger_predictions(self) -> Location:
        """Shadow scores of the challenger: beside the predictions, never among them."""
        return self.location(posixpath.join(posixpath.dirname(self.predictions_url.rstrip("/")),
                                            CHALLENGER_PREDICTIONS_FOLDER))

    def backup(self) -> Location:
        if not self.backup_url:
            raise ValueError("no backup location configured (FRAUD_BACKUP_BUCKET)")
        return self.location(self.backup_url)

    def registry(self) -> ModelRegistry:
        # Imported here: the registry brings the model runtime, which `fraud s3` never needs.
        from fraud_assets.core.model.registry import ModelRegistry

        tracking = tracker()
        return ModelRegistry(self.models(), on_pointer_change=tracking.pointer_follower() if tracking else None)


def store_urls(env: str | None = None) -> StoreUrls:
    """The stores of ``env`` (default: ``FRAUD_ENV``)."""
    if (env or fraud_env()) == "production":
        buckets = bucket_names()
        return StoreUrls(
            data_url=f"s3://{buckets['data']}",
            models_url=f"s3://{buckets['models']}/models",
            predictions_url=f"s3://{buckets['predictions']}/predictions",
            backup_url=f"s3://{buckets['backups']}/backups",
            s3_endpoint_url=s3_endpoint_url(),
            aws_region=aws_region(),
            kms_key_id=kms_key_id(),
        )
    root = local_root()
    return StoreUrls(
        data_url=str(root / "data"),
        models_url=str(root / "models"),
        predictions_url=str(root / "data" / "predictions"),
        backup_url=str(root / "backups"),
    )


# Quality gate: the bar a newly trained model must clear before it serves.
# The longest a run may take: the production instance's run_monitoring.max_runtime_seconds
# (deployment/dagster.yaml). A temporary object older than this belongs to no live run.
MAX_RUN_SECONDS = 21_600
AUPRC_FLOOR_DEFAULT = 0.5
MAX_AUPRC_REGRESSION_DEFAULT = 0.02
# Row-weighted gap between predicted and observed fraud rate (calibration.py). Calibrated
# models measure well under 0.005 at fraud rates up to 1%; one whose odds are off by the
# class weight measures several times the limit.
MAX_CALIBRATION_ERROR_DEFAULT = 0.01
# Long enough for an S3 endpoint or a network blip to come back, short enough that two
# retries (10 s, then 20 s) still finish well inside a run's schedule.
RETRY_DELAY_DEFAULT = 10.0


def auprc_floor() -> float:
    return env_float("FRAUD_AUPRC_FLOOR", AUPRC_FLOOR_DEFAULT)


def max_auprc_regression() -> float:
    return env_float("FRAUD_MAX_AUPRC_REGRESSION", MAX_AUPRC_REGRESSION_DEFAULT)


def search_budget_seconds() -> float:
    """Seconds of hyperparameter search per training (``FRAUD_SEARCH_BUDGET_SECONDS``, default
    60); 0 trains the default configuration as it is."""
    from fraud_assets.core.model.search import DEFAULT_BUDGET_SECONDS  # numpy-free, Optuna-free

    budget = env_float("FRAUD_SEARCH_BUDGET_SECONDS", DEFAULT_BUDGET_SECONDS)
    if budget < 0:
        raise ValueError(f"FRAUD_SEARCH_BUDGET_SECONDS must be 0 or more, not {budget}")
    return budget


def parallel_trees() -> int | None:
    """Trees grown per boosting round and averaged (``FRAUD_PARALLEL_TREES``); None when unset,
    so the training's own default applies. 1 is plain boosting: a third of the trees to score
    and explain, about half the training time at ULB size, a little less accurate on few frauds."""
    if not os.environ.get("FRAUD_PARALLEL_TREES"):
        return None
    return env_int("FRAUD_PARALLEL_TREES", 0, minimum=1)


def refit_on_validation() -> bool:
    """``FRAUD_REFIT=off`` ships the model early stopping cut instead of refitting its rounds on
    train and validation together (default on)."""
    value = (os.environ.get("FRAUD_REFIT") or "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"FRAUD_REFIT must be 'on' or 'off', not {value!r}")
    return value == "on"


def retry_delay_seconds() -> float:
    """Seconds a step waits before its first retry after a transient storage failure
    (``FRAUD_RETRY_DELAY_SECONDS``, default 10; each later retry waits twice as long). Read
    when the code location loads."""
    delay = env_float("FRAUD_RETRY_DELAY_SECONDS", RETRY_DELAY_DEFAULT)
    if not 0 <= delay < math.inf:  # nan fails too
        raise ValueError(f"FRAUD_RETRY_DELAY_SECONDS must be a finite number of seconds, 0 or more, not {delay}")
    return delay


def max_calibration_error() -> float:
    return env_float("FRAUD_MAX_CALIBRATION_ERROR", MAX_CALIBRATION_ERROR_DEFAULT)


# Partitions and schedules.
def partitions_start() -> str:
    return os.environ.get("FRAUD_PARTITIONS_START") or "2024-01-01"


def timezone() -> str:
    return os.environ.get("FRAUD_TIMEZONE") or "UTC"


# Outside services a run reports to; unset means "log only".
def pushgateway_url() -> str | None:
    return os.environ.get("FRAUD_PUSHGATEWAY_URL") or None


def slack_webhook_url() -> str | None:
    return os.environ.get("FRAUD_SLACK_WEBHOOK_URL") or None


# The loop in time: labels arrive late, models are judged and replaced on them.
def label_maturity_days() -> int:
    """Days after which a transaction with no fraud report counts as genuine for good."""
    return env_int("FRAUD_LABEL_MATURITY_DAYS", 30, minimum=1)


def today():
    """The day the loop believes it is: ``FRAUD_AS_OF_DATE`` when set (a replay of past days,
    as ``fraud demo`` does), else today in UTC. Maturity, training windows and challenges
    count from it."""
    import datetime as dt

    value = os.environ.get("FRAUD_AS_OF_DATE")
    if not value:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"FRAUD_AS_OF_DATE must be a date (YYYY-MM-DD), not {value!r}") from None


def training_window_days() -> int:
    """How many days of mature labelled history retraining adds to the base file."""
    return env_int("FRAUD_TRAINING_WINDOW_DAYS", 90, minimum=0)


def missed_fraud_cost() -> float:
    return env_float("FRAUD_MISSED_FRAUD_COST", 100.0)


def false_alert_cost() -> float:
    return env_float("FRAUD_FALSE_ALERT_COST", 1.0)


def promotion_policy():
    """When a challenger replaces production (see core.monitoring.challenger)."""
    from fraud_assets.core.monitoring.challenger import PromotionPolicy

    defaults = PromotionPolicy()
    return PromotionPolicy(
        min_days=env_int("FRAUD_CHALLENGER_MIN_DAYS", defaults.min_days, minimum=1),
        min_frauds=env_int("FRAUD_CHALLENGER_MIN_FRAUDS", defaults.min_frauds, minimum=1),
        margin=env_float("FRAUD_PROMOTION_MARGIN", defaults.margin),
        alpha=env_float("FRAUD_PROMOTION_ALPHA", defaults.alpha),
        resamples=env_int("FRAUD_PROMOTION_RESAMPLES", defaults.resamples, minimum=100),
        missed_fraud_cost=missed_fraud_cost(),
        false_alert_cost=false_alert_cost(),
    )


# Experiment tracking (MLflow): every training is a run; the registry's pointers are aliases.
def tracking_enabled() -> bool:
    """``FRAUD_TRACKING=off`` turns MLflow tracking off (default on)."""
    value = (os.environ.get("FRAUD_TRACKING") or "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"FRAUD_TRACKING must be 'on' or 'off', not {value!r}")
    return value == "on"


def tracking_uri() -> str:
    """MLflow's own ``MLFLOW_TRACKING_URI`` when set (the server in production), else an
    embedded SQLite store in the local folder: no server needed to train on a laptop."""
    uri = (os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    if uri:
        return uri
    return f"sqlite:///{local_root() / 'mlflow' / 'mlflow.db'}"


def tracking_experiment() -> str:
    return os.environ.get("FRAUD_MLFLOW_EXPERIMENT") or "card-fraud"


def tracking_model_name() -> str:
    """The MLflow registered model whose aliases follow the registry's pointers."""
    return os.environ.get("FRAUD_MLFLOW_MODEL_NAME") or "card-fraud"


def tracker():
    """The tracker of these settings, or None with ``FRAUD_TRACKING=off``. Cheap: MLflow is
    imported only when something is logged."""
    if not tracking_enabled():
        return None
    from fraud_assets.core.tracking.tracker import Tracker

    embedded = not (os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    # The embedded store keeps artifacts beside it, not in ./mlruns of whatever folder runs.
    artifacts = (local_root() / "mlflow" / "artifacts").as_uri() if embedded else None
    return Tracker(uri=tracking_uri(), experiment=tracking_experiment(), model_name=tracking_model_name(),
                   artifact_location=artifacts)
