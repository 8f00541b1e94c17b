"""Which errors can pass on a retry of the same step with the same inputs."""

from __future__ import annotations

# A missing file or a refused permission stays so on retry; other I/O and network errors
# (a timeout, a reset connection, an endpoint restarting) often do not.
_PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(error: BaseException) -> bool:
    """True for errors of the environment that a later attempt may not meet: I/O and network
    failures and memory exhaustion. Errors of the data or the code (ValueError, KeyError,
    TypeError, XGBoost's refusals) repeat identically on the same inputs."""
    if isinstance(error, _PERMANENT_OS_ERRORS):
        return False
    if isinstance(error, OSError | MemoryError):
        return True
    return _is_botocore_connection_error(error)


def _is_botocore_connection_error(error: BaseException) -> bool:
    # botocore's connection errors do not derive from OSError; imported lazily, as botocore
    # is only present with the S3 extras.
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:
        return False
    return isinstance(error, BotoConnectionError | HTTPClientError)
