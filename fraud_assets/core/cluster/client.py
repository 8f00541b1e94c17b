"""A connection to the Dask scheduler that ``FRAUD_DASK_SCHEDULER`` names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from distributed import Client

from fraud_assets.core.cluster.errors import ClusterUnavailable

# Long enough for a scheduler that is still starting (systemd restarts it within seconds).
CONNECT_TIMEOUT_SECONDS = 30


@contextlib.contextmanager
def cluster_client(address: str) -> Iterator[Client]:
    try:
        # The default client: every .compute() then runs on the workers (without it Dask
        # would quietly compute here).
        client = Client(address, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=True)
    except (OSError, TimeoutError) as error:
        raise ClusterUnavailable(f"no Dask scheduler answers at {address}: {error}") from error
    try:
        yield client
    finally:
        client.close()
