"""Partitions: one per calendar day of batch files."""

import os

import dagster as dg

PARTITIONS_START = os.environ.get("FRAUD_PARTITIONS_START", "2024-01-01")
TIMEZONE = os.environ.get("FRAUD_TIMEZONE", "UTC")

# end_offset=1: today's partition exists, so a file dated today can be scored as it lands.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone=TIMEZONE, end_offset=1
)
