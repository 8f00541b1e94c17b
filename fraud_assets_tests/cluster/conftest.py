from __future__ import annotations

import pytest

from fraud_assets_tests.services.dask_cluster import LocalDaskCluster


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory, s3_endpoint):
    # After s3_endpoint: the workers inherit its credentials from this environment.
    cluster = LocalDaskCluster(tmp_path_factory.mktemp("dask"), workers=2, memory_limit="1GB")
    try:
        yield cluster
    finally:
        cluster.stop()
