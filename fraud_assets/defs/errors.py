"""Failures that a retry cannot fix: missing inputs, bad data, a model below the bar."""

import dagster as dg


def permanent_failure(description: str, **metadata) -> dg.Failure:
    # Retry policies exist for flaky storage; retrying a missing file only delays the alert.
    return dg.Failure(description=description, allow_retries=False, metadata=metadata or None)
