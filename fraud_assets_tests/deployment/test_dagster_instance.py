"""deployment/dagster.yaml and the workspace files, checked with Dagster's own validators.

`dagster_instance_config` checks the top-level schema only; the configurable classes
(storage, compute logs, run coordinator) are then built from the file with the environment
variables set, which is what dagster-daemon does at start-up.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from .conftest import DEPLOYMENT

PG_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5433",
    "DAGSTER_PG_USERNAME": "dagster_user",
    "DAGSTER_PG_PASSWORD": "s3cret",
    "DAGSTER_PG_DB": "dagster_db",
}
ENV = {**PG_ENV, "FRAUD_DATA_BUCKET": "card-fraud-prod-data", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def instance_dir(tmp_path: Path) -> Path:
    shutil.copy(DEPLOYMENT / "dagster.yaml", tmp_path / "dagster.yaml")
    return tmp_path


@pytest.fixture
def instance_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    # An endpoint left over from a developer's shell must not leak into the checks.
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return ENV


@pytest.fixture
def config(instance_dir: Path) -> dict:
    from dagster._core.instance.config import dagster_instance_config

    validated, custom_class = dagster_instance_config(str(instance_dir))
    assert custom_class is None
    return dict(validated)


def _rehydrate(section: dict):
    from dagster._serdes.config_class import ConfigurableClassData

    return ConfigurableClassData(
        section["module"], section["class"], yaml.safe_dump(section.get("config", {}))
    ).rehydrate()


def test_instance_schema_validates(config: dict) -> None:
    assert {"storage", "compute_logs", "run_coordinator", "run_monitoring", "run_retries"} <= set(
        config
    )


def test_postgres_storage_uses_psycopg2_and_env_only(config: dict, instance_env) -> None:
    from dagster._config import process_config
    from dagster._core.storage.config import pg_config
    from dagster_postgres.utils import pg_url_from_config

    db = config["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    # Every connection setting is an env reference: nothing site-specific in the file.
    for key in ("hostname", "port", "username", "password", "db_name"):
        assert set(db[key]) == {"env"}, key

    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    url = pg_url_from_config(resolved.value)
    assert url.startswith("postgresql+psycopg2://dagster_user:")
    assert url.endswith("@db.internal:5433/dagster_db")


def test_missing_database_env_is_an_error(config: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._config import process_config
    from dagster._core.storage.config import pg_config

    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert not resolved.success
    assert "DAGSTER_PG_PASSWORD" in str(resolved.errors)


def test_s3_compute_logs_build_from_env(config: dict, instance_env) -> None:
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    section = config["compute_logs"]
    assert (section["module"], section["class"]) == (
        "dagster_aws.s3.compute_log_manager",
        "S3ComputeLogManager",
    )
    # Optional variables cannot be `env:` references (no default): an unset one would stop
    # the instance from loading, so the endpoint comes from boto3's AWS_ENDPOINT_URL_S3.
    assert "endpoint_url" not in section["config"]
    manager = _rehydrate(section)
    assert isinstance(manager, S3ComputeLogManager)
    assert manager._s3_bucket == "card-fraud-prod-data"
    assert manager._s3_prefix == "dagster/compute-logs"


def test_queued_coordinator_limits(config: dict, instance_env) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator

    assert "concurrency" not in config, "limits belong in one place only"
    coordinator = _rehydrate(config["run_coordinator"])
    assert isinstance(coordinator, QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    assert 1 <= queue.max_concurrent_runs <= 8
    assert {"key": "fraud/trains", "value": "true", "limit": 1} in queue.tag_concurrency_limits


def _blocked(limits: list[dict], running: list[dict[str, str]], candidate: dict[str, str]) -> bool:
    from dagster._utils.tags import TagConcurrencyLimitsCounter

    counter = TagConcurrencyLimitsCounter(limits, [SimpleNamespace(tags=t) for t in running])
    return counter.is_blocked(SimpleNamespace(tags=candidate))


def test_tag_limits_admit_one_training_run_and_cap_the_rest(config: dict) -> None:
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    from fraud_assets.defs.jobs import drift_job, fraud_pipeline_job, scoring_job, training_job

    training, pipeline, scoring, drift = (
        dict(job.tags) for job in (training_job, fraud_pipeline_job, scoring_job, drift_job)
    )

    assert not _blocked(limits, [], training)
    assert _blocked(limits, [training], training)
    # The pipeline job trains too: it and a training run never overlap.
    assert _blocked(limits, [pipeline], training)
    assert _blocked(limits, [training], pipeline)
    # Training does not hold back the other kinds, nor they it.
    assert not _blocked(limits, [training], scoring)
    assert not _blocked(limits, [scoring, scoring, drift], training)
    # Other kinds are limited per kind.
    assert not _blocked(limits, [scoring], scoring)
    assert _blocked(limits, [scoring, scoring], scoring)
    assert not _blocked(limits, [scoring, scoring], drift)


def test_run_monitoring_retries_retention_telemetry(config: dict) -> None:
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["start_timeout_seconds"] > 0
    assert monitoring["cancel_timeout_seconds"] > 0
    assert 3600 <= monitoring["max_runtime_seconds"] <= 24 * 3600

    retries = config["run_retries"]
    assert retries["enabled"] is True
    assert retries["max_retries"] >= 1

    for kind in ("schedule", "sensor"):
        purge = config["retention"][kind]["purge_after_days"]
        assert isinstance(purge, dict) and all(v > 0 for v in purge.values()), kind
        assert {"skipped", "success", "failure"} <= set(purge)

    assert config["telemetry"]["enabled"] is False


@pytest.mark.parametrize(
    ("name", "host"),
    [("workspace.yaml", "127.0.0.1"), ("workspace.compose.yaml", "code-server")],
)
def test_workspace_points_at_the_code_server(name: str, host: str) -> None:
    from dagster._core.workspace.config_schema import ensure_workspace_config

    path = DEPLOYMENT / name
    workspace = ensure_workspace_config(yaml.safe_load(path.read_text()), str(path))
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"] == {"host": host, "port": 4000, "location_name": "fraud_assets"}


def _postgres_admin_dsn() -> str | None:
    try:
        import psycopg2
    except ImportError:
        return None
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2"
    try:
        psycopg2.connect(dsn).close()
    except psycopg2.OperationalError:
        return None
    return dsn


@pytest.mark.integration
def test_instance_starts_against_real_postgres(
    instance_dir: Path, instance_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads the instance exactly as the daemon does, in a throwaway database."""
    dsn = _postgres_admin_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL with trust auth on 127.0.0.1:5432")
    import psycopg2
    from dagster import DagsterInstance

    db_name = f"card_fraud_deploy_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{db_name}"')
        monkeypatch.setenv("DAGSTER_HOME", str(instance_dir))
        monkeypatch.setenv("DAGSTER_PG_HOST", "127.0.0.1")
        monkeypatch.setenv("DAGSTER_PG_PORT", "5432")
        monkeypatch.setenv("DAGSTER_PG_USERNAME", "postgres")
        monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")
        monkeypatch.setenv("DAGSTER_PG_DB", db_name)
        instance = DagsterInstance.get()
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert instance.run_storage._engine.url.drivername == "postgresql+psycopg2"
            assert instance.get_runs() == []
            assert instance.run_monitoring_enabled
            assert instance.run_retries_enabled
        finally:
            instance.dispose()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()


def test_local_instance_fails_killed_runs_as_production_does() -> None:
    """Killed runs stayed STARTED for ever on the embedded default: no run monitoring."""
    from dagster._core.instance.config import dagster_instance_config

    from fraud_assets import settings

    local, _ = dagster_instance_config(str(DEPLOYMENT.parent))
    production, _ = dagster_instance_config(str(DEPLOYMENT))
    monitoring = local["run_monitoring"]
    assert monitoring["enabled"] is True
    for key in ("start_timeout_seconds", "cancel_timeout_seconds", "max_runtime_seconds"):
        assert monitoring[key] == production["run_monitoring"][key], key
    # Scoring removes temporaries older than this: by then no run can still own them.
    assert monitoring["max_runtime_seconds"] == settings.MAX_RUN_SECONDS
    # A killed run is found by its dead worker within a poll or two, not after max runtime.
    assert local["run_launcher"]["class"] == "LocalRunLauncher"
    assert local["run_launcher"]["module"] == "fraud_assets.defs.local_run_launcher"
    assert monitoring["poll_interval_seconds"] <= 30
