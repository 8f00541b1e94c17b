"""What a model was trained from: the data's content hash, the code's version, the run.

Recorded in every manifest so that a model in service can be traced back to the exact rows
and code that made it, whichever way it was trained (``fraud train`` or Dagster).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

PACKAGE = "card-fraud"
_SOURCE_DIR = Path(__file__).resolve().parent


def data_fingerprint(frames: Iterable[pd.DataFrame]) -> dict:
    """SHA-256 of the frames' content (column names, dtypes and values, in order) and the row
    count. The index is left out: the same rows read again, or split again, hash the same."""
    digest = hashlib.sha256()
    rows = 0
    for frame in frames:
        digest.update(repr([(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]).encode())
        try:
            hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
        except TypeError:
            # A column beyond the schema holding lists or dicts (a nested Parquet column)
            # cannot be hashed as it is, and made `fraud train` end in a traceback: its
            # values are hashed by their text instead. Plain frames hash as they always did.
            text = {c: frame[c].map(repr) for c in frame.columns if frame[c].dtype == object}
            hashes = pd.util.hash_pandas_object(frame.assign(**text), index=False).to_numpy(dtype=np.uint64)
        digest.update(hashes.tobytes())
        rows += len(frame)
    return {"sha256": digest.hexdigest(), "rows": rows}


@cache
def code_version() -> dict:
    """The installed package's version and, when the code runs from a git checkout, its
    commit and whether the work tree had uncommitted changes (None when not a checkout, as
    in the container image)."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "package": PACKAGE,
        "version": version,
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=_SOURCE_DIR, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(training_frames: Iterable[pd.DataFrame], *, run_id: str | None = None) -> dict:
    """The manifest's ``provenance`` section; ``run_id`` is the Dagster run's, when there is one."""
    return {
        "training_data": data_fingerprint(training_frames),
        "code": code_version(),
        "dagster_run_id": run_id,
    }


def partitioned_provenance(partition_digests: list[str], rows: int, *, run_id: str | None = None) -> dict:
    """Provenance of data that was never in one process (a Dask cluster read it): SHA-256 over
    each partition's own :func:`data_fingerprint`, in partition order. The same files read
    with the same partitioning hash the same; the value differs from a single-process hash."""
    digest = hashlib.sha256()
    for partition in partition_digests:
        digest.update(partition.encode())
    return {
        "training_data": {"sha256": digest.hexdigest(), "rows": rows,
                          "scheme": "sha256-of-partition-fingerprints",
                          "partitions": len(partition_digests)},
        "code": code_version(),
        "dagster_run_id": run_id,
    }
