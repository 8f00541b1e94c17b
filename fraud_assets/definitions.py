"""The code location: every asset, check, job and schedule, wired for ``FRAUD_ENV``."""


import dagster as dg

from fraud_assets import settings
from fraud_assets.defs import checks
from fraud_assets.defs.alerting import build_run_failure_sensor
from fraud_assets.defs.assets import challenger, ingestion, monitoring, outcomes, scoring, training
from fraud_assets.defs.automation import build_automation_sensor
from fraud_assets.defs.freshness import build_freshness_sensor
from fraud_assets.defs.io_managers import ArtifactIOManager, ModelRegistryIOManager, StoredTableLoader
from fraud_assets.defs.jobs import drift_job, fraud_pipeline_job, scoring_job, training_job
from fraud_assets.defs.loop_sensors import build_label_sensor, build_serving_sensor, labels_job
from fraud_assets.defs.resources import (
    DaskCluster,
    DatasetSettings,
    DriftSettings,
    MetricsPusher,
    SlackAlerts,
    gate_from_env,
    setting,
    storage_for,
)
from fraud_assets.defs.schedules import build_schedules
from fraud_assets.defs.sensors import build_incoming_sensor


def build_resources(env: str) -> dict:
    storage = storage_for(env)
    return {
        "storage": storage,
        "dataset": DatasetSettings(),
        "quality_gate": gate_from_env(),
        "drift_settings": DriftSettings(),
        "metrics": MetricsPusher(pushgateway_url=setting("FRAUD_PUSHGATEWAY_URL")),
        "slack": SlackAlerts(webhook_url=setting("FRAUD_SLACK_WEBHOOK_URL")),
        "dask": DaskCluster(scheduler=settings.dask_scheduler()),
        "io_manager": ArtifactIOManager(storage=storage, store="data"),
        "model_artifact_io_manager": ArtifactIOManager(storage=storage, store="models"),
        "model_io_manager": ModelRegistryIOManager(storage=storage),
        "stored_table_loader": StoredTableLoader(storage=storage),
    }


def build_executor(kind: str) -> dg.ExecutorDefinition:
    if kind == "ecs":
        # Each step in its own ECS task, sized like the run's task unless an op's ecs/cpu and
        # ecs/memory tags say otherwise: worth it when one step (training) needs far more than
        # the others, at the price of a task start (tens of seconds) per step. Only under the
        # ECS run launcher, which it checks when a run starts.
        from dagster_aws.ecs import ecs_executor

        return ecs_executor.configured({"max_concurrent": 2})
    if kind == "multiprocess":
        # A process per step, forked from a server that has already imported this code
        # location, so isolation does not cost an import per step.
        return dg.multiprocess_executor.configured(
            {
                "max_concurrent": 2,
                "start_method": {"forkserver": {"preload_modules": ["fraud_assets.definitions"]}},
            }
        )
    # Locally every step runs in one process: starting a Python process per step costs more
    # than most steps.
    return dg.in_process_executor


def build_definitions(env: str | None = None) -> dg.Definitions:
    env = env or settings.fraud_env()
    production = env == "production"
    executor = build_executor(settings.executor_kind(env))
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, training, scoring, monitoring, outcomes, challenger]),
        asset_checks=dg.load_asset_checks_from_modules([checks]),
        jobs=[training_job, scoring_job, drift_job, fraud_pipeline_job, labels_job],
        schedules=build_schedules(running=production),
        sensors=[
            build_incoming_sensor(running=production),
            build_run_failure_sensor(running=production),
            build_label_sensor(running=production),
            build_serving_sensor(running=production),
            build_automation_sensor(running=production),
            build_freshness_sensor(running=production),
        ],
        resources=build_resources(env),
        executor=executor,
    )


defs = build_definitions()
