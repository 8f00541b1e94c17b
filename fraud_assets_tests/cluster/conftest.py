from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

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


@contextlib.contextmanager
def local_project(root: Path, labelled_rows: int, **settings: str) -> Iterator[Path]:
    """A throwaway local project holding a labelled base file of ``labelled_rows`` rows, with
    the environment that points at it (plus ``settings``) for as long as the block lasts;
    alerting, metrics and a Dask scheduler from the caller's environment are left out."""
    from fraud_assets.core.data.tables import write_table
    from fraud_assets.synthetic.generate import generate_transactions
    from fraud_assets_tests.graph.conftest import FRAUD_RATE

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"FRAUD_LOCAL_DIR": str(root), "FRAUD_ENV": "local", **settings}.items():
            patch.setenv(name, value)
        for name in ("FRAUD_PUSHGATEWAY_URL", "FRAUD_SLACK_WEBHOOK_URL", "FRAUD_AUPRC_FLOOR",
                     "FRAUD_DASK_SCHEDULER", "FRAUD_TRAINING_WINDOW_DAYS"):
            if name not in settings:
                patch.delenv(name, raising=False)
        raw = generate_transactions(labelled_rows, seed=3, n_days=2, fraud_rate=FRAUD_RATE)
        write_table(raw, str(root / "data" / "raw" / "creditcard.csv"))
        yield root
