"""Schedules: the deployment guide's cron jobs, as Dagster schedules.

Running by default in production, stopped on the embedded default so a laptop does not
start training every Sunday by surprise.
"""

from datetime import timedelta

import dagster as dg

from fraud_assets.defs.jobs import drift_job, scoring_job, training_job
from fraud_assets.defs.partitions import TIMEZONE


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
    status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    return [
        previous_day_schedule(
            "daily_scoring_schedule", scoring_job, 2, "Score yesterday's batch files at 02:00.", status
        ),
        dg.ScheduleDefinition(
            name="weekly_training_schedule",
            job=training_job,
            cron_schedule="0 3 * * 0",
            execution_timezone=TIMEZONE,
            default_status=status,
            description="Retrain on Sundays at 03:00; the gate decides whether it serves.",
        ),
        previous_day_schedule(
            "daily_drift_schedule", drift_job, 4, "Check yesterday's drift at 04:00.", status
        ),
    ]
