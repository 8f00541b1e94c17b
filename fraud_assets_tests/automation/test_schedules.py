"""The guide's cron jobs as schedules: times, the day they run, default status."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from fraud_assets.definitions import build_definitions
from fraud_assets.defs.partitions import TIMEZONE


def schedule(defs, name):
    return next(s for s in defs.schedules if s.name == name)


@pytest.mark.parametrize(
    ("name", "cron", "job"),
    [
        ("daily_scoring_schedule", "0 2 * * *", "scoring_job"),
    ],
)
def test_schedule_times_match_the_guide(name, cron, job):
    definition = schedule(build_definitions("local"), name)
    assert definition.cron_schedule == cron
    assert definition.job_name == job
    assert definition.execution_timezone == TIMEZONE == "UTC"


@pytest.mark.parametrize("name", ["daily_scoring_schedule"])
def test_daily_schedules_run_the_previous_day(name):
    defs = build_definitions("local")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 3, 1, 2, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    (request,) = schedule(defs, name).evaluate_tick(context).run_requests
    # Past a month boundary, to be sure the date arithmetic is real.
    assert request.partition_key == "2025-02-28"


@pytest.mark.parametrize(("env", "status"), [("production", "RUNNING"), ("local", "STOPPED")])
def test_automation_runs_by_default_only_in_production(env, status):
    defs = build_definitions(env)
    for definition in [*defs.schedules, *defs.sensors]:
        assert definition.default_status.value == status, definition.name
