"""Partitions: one per calendar day of batch files."""


import os

import dagster as dg

PARTITIONS_START = os.environ.get("FRAUD_PARTITIONS_START", "2024-01-01")
TIMEZONE = os.environ.get("FRAUD_TIMEZONE", "UTC")

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone=TIMEZONE)
