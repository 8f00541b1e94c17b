"""Schedules: the deployment guide's 02:00 scoring cut-off, as a Dagster schedule.

Running by default in production, stopped on the embedded default so a laptop does not
start training every Sunday by surprise.
"""

from datetime import timedelta

import dagster as dg

from fraud_assets.defs.jobs import scoring_job
from fraud_assets.defs.partitions import TIMEZONE

# Yesterday's files are complete at this hour: the scoring cut-off (the freshness policies
# count from it).
SCORING_HOUR = 2


def previous_day_schedule(name: str, job, hour: int, description: str, status) -> dg.ScheduleDefinition:
    """At ``hour`` each day, run ``job`` for the day before: that day's files are complete."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=f"0 {hour} * * *",
        execution_timezone=TIMEZONE,
        default_status=status,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
        return dg.RunRequest(run_key=f"{name}:{day}", partition_key=day)

    return _schedule


def build_schedules(*, running: bool) -> list[dg.ScheduleDefinition]:
    # Training and drift run by automation conditions on their assets (defs/automation.py);
    # scoring keeps its cut-off schedule, which no condition over today's partition can say.
    status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    return [
        previous_day_schedule(
            "daily_scoring_schedule", scoring_job, SCORING_HOUR,
            f"Score yesterday's batch files at {SCORING_HOUR:02d}:00.", status,
        ),
    ]
