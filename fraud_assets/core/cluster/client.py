"""A connection to the Dask scheduler that ``FRAUD_DASK_SCHEDULER`` names."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from distributed import Client, as_completed

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


def added_up(futures: list, add: Callable) -> None:
    """Hands each task's result to ``add`` as it arrives, so this process holds one task's
    result at a time rather than all of them."""
    for future in as_completed(futures):
        add(future.result())
