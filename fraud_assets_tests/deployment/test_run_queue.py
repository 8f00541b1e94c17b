"""The run queue of both instance files, driven by Dagster's own queue daemon: one run per day
at a time, so the 02:00 schedule and the incoming-file sensor never score a day together.

Only the queue's section of each file is loaded, onto a throwaway SQLite instance, with a run
launcher that records launches instead of starting processes.
"""

from __future__ import annotations

import pytest
import yaml

from .conftest import DEPLOYMENT, REPO

DAY, OTHER_DAY = "2025-03-04", "2025-03-05"


def _queue_sections(path) -> dict:
    config = yaml.safe_load(path.read_text())
    return {key: config[key] for key in ("run_coordinator", "concurrency") if key in config}


@pytest.fixture(params=["local", "local with more runs", "production"])
def instance(request):
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.test_utils import instance_for_test

    folder = DEPLOYMENT if request.param == "production" else REPO
    dagster_instance_config(str(folder))  # the whole file is valid as Dagster reads it
    sections = _queue_sections(folder / "dagster.yaml")
    if request.param == "local with more runs":
        # The local limit of one run at a time hides the rule; it must hold without it.
        sections["concurrency"]["runs"]["max_concurrent_runs"] = 4
    overrides = {
        **sections,
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    with instance_for_test(overrides=overrides) as test_instance:
        yield test_instance


def _queue(instance, job, day: str) -> str:
    from dagster import DagsterRunStatus
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.storage.tags import PARTITION_NAME_TAG
    from dagster._core.test_utils import create_run_for_test

    # Queued runs must say where their code lives; the recording launcher never loads it.
    origin = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("fraud_assets"), "__repository__")
    tags = {**job.tags, PARTITION_NAME_TAG: day}
    return create_run_for_test(
        instance, job_name=job.name, status=DagsterRunStatus.QUEUED, tags=tags,
        remote_job_origin=origin.get_job_origin(job.name),
    ).run_id


def _dequeue(instance) -> set[str]:
    """One pass of the queue daemon; the ids of the runs it launched."""
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import EmptyWorkspaceTarget
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    with create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as context:
        with QueuedRunCoordinatorDaemon(interval_seconds=1) as daemon:
            list(daemon.run_iteration(context))
    return {run.run_id for run in instance.run_launcher.queue()}


def test_two_scorings_of_one_day_run_one_after_the_other(instance) -> None:
    from dagster import DagsterRunStatus

    from fraud_assets.defs.jobs import scoring_job

    by_schedule = _queue(instance, scoring_job, DAY)
    by_sensor = _queue(instance, scoring_job, DAY)

    assert _dequeue(instance) == {by_schedule}
    assert _dequeue(instance) == {by_schedule}, "the second waits while the first runs"
    assert instance.get_run_by_id(by_sensor).status == DagsterRunStatus.QUEUED

    instance.report_run_failed(instance.get_run_by_id(by_schedule))
    assert _dequeue(instance) == {by_schedule, by_sensor}


def test_the_production_queue_scores_different_days_side_by_side() -> None:
    from dagster._core.test_utils import instance_for_test

    from fraud_assets.defs.jobs import drift_job, scoring_job

    overrides = {
        **_queue_sections(DEPLOYMENT / "dagster.yaml"),
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    with instance_for_test(overrides=overrides) as instance:
        first = _queue(instance, scoring_job, DAY)
        other_day = _queue(instance, scoring_job, OTHER_DAY)
        same_day_drift = _queue(instance, drift_job, DAY)
        assert _dequeue(instance) == {first, other_day}
        assert same_day_drift not in _dequeue(instance)
