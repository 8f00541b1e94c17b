"""Partitions: one per calendar day of batch files."""

import datetime as dt

import dagster as dg

from fraud_assets import settings

PARTITIONS_START = settings.partitions_start()
TIMEZONE = settings.timezone()

# end_offset=1: today's partition exists, so a file dated today can be scored as it lands.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone=TIMEZONE, end_offset=1
)

# A producer whose clock runs ahead of ours (another timezone, a fast clock) names files for a
# day whose partition does not exist yet. Such a file waits for its partition; a date further
# ahead than this is a wrong name, not an early one.
MAX_DAYS_EARLY = 2


def is_early_day(day: str) -> bool:
    """A day with no partition yet, but at most ``MAX_DAYS_EARLY`` days after the last one."""
    if daily_partitions.has_partition_key(day):
        return False
    last = daily_partitions.get_last_partition_key()
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        return False
    if last is None:  # the partitions start in the future
        return False
    last_date = dt.date.fromisoformat(last)
    return last_date < date <= last_date + dt.timedelta(days=MAX_DAYS_EARLY)
