"""How steps fail: permanently (missing inputs, bad data, a model below the bar), or
transiently (storage hiccups), which a retry with backoff can fix."""

import dagster as dg

# Storage calls already retry inside the S3 client; this covers what outlives those
# retries (an endpoint restarting, a network blip longer than a few seconds).
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def permanent_failure(description: str, **metadata) -> dg.Failure:
    # Retrying a missing file or a failed gate only delays the alert.
    return dg.Failure(description=description, allow_retries=False, metadata=metadata or None)
