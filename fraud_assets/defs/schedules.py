"""Schedules: the deployment guide's cron jobs, as Dagster schedules.

Running by default in production, stopped on the embedded default so a laptop does not
start training every Sunday by surprise.
"""


import dagster as dg

from fraud_assets.defs.jobs import drift_job, scoring_job, training_job
from fraud_assets.defs.partitions import TIMEZONE


def build_schedules(*, running: bool) -> list[dg.ScheduleDefinition]:
    status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    # A daily-partitioned job scheduled at 02:00 runs the previous (complete) day.
    daily_scoring = dg.build_schedule_from_partitioned_job(
        scoring_job, name="daily_scoring_schedule", hour_of_day=2, minute_of_hour=0,
        default_status=status,
    )
    daily_drift = dg.build_schedule_from_partitioned_job(
        drift_job, name="daily_drift_schedule", hour_of_day=4, minute_of_hour=0,
        default_status=status,
    )
    weekly_training = dg.ScheduleDefinition(
        name="weekly_training_schedule",
        job=training_job,
        cron_schedule="0 3 * * 0",
        execution_timezone=TIMEZONE,
        default_status=status,
    )
    return [daily_scoring, weekly_training, daily_drift]
