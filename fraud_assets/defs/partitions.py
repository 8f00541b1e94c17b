"""Partitions: one per calendar day of batch files."""

import dagster as dg

from fraud_assets import settings

PARTITIONS_START = settings.partitions_start()
TIMEZONE = settings.timezone()

# end_offset=1: today's partition exists, so a file dated today can be scored as it lands.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone=TIMEZONE, end_offset=1
)
