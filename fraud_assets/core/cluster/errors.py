"""The cluster's own failure, importable without Dask (the CLI reports it on every path)."""


class ClusterUnavailable(RuntimeError):
    """The scheduler could not be reached: a configuration or infrastructure problem."""
