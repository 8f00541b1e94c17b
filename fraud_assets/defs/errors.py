"""How steps fail: permanently (missing inputs, bad data, a model below the bar), or
transiently (storage hiccups), which a retry with backoff can fix."""

import functools
import inspect

import dagster as dg

from fraud_assets import settings
from fraud_assets.core.storage.errors import is_transient

# Storage calls already retry inside the S3 client; this covers what outlives those
# retries (an endpoint restarting, a network blip longer than a few seconds).
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=2, delay=settings.retry_delay_seconds(), backoff=dg.Backoff.EXPONENTIAL
)


def permanent_failure(description: str, **metadata) -> dg.Failure:
    # Retrying a missing file or a failed gate only delays the alert.
    return dg.Failure(description=description, allow_retries=False, metadata=metadata or None)


def _as_permanent(error: Exception) -> dg.Failure:
    return permanent_failure(f"{type(error).__name__}: {error}")


def retry_only_transient(fn):
    """Under a retry policy, let only errors that can pass on retry (I/O, network, memory)
    be retried; anything else (data without frauds, a bad config value) fails at once.

    Put it below ``@dg.asset``: Dagster reads the wrapped function's signature."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (dg.Failure, dg.RetryRequested):
                raise
            except Exception as error:
                if is_transient(error):
                    raise
                raise _as_permanent(error) from error

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (dg.Failure, dg.RetryRequested):
            raise
        except Exception as error:
            if is_transient(error):
                raise
            raise _as_permanent(error) from error

    return function
