"""One batch file scored, or refused for its content: the same verdict wherever it is scored.

The verdict is reached where the file was read, because only there is the whole exception
chain at hand: a parser may wrap what the storage raised, and that file is not at fault. A
storage failure is raised (as :class:`StorageError`, which survives a trip between
processes), so the caller retries and keeps the file where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec

from fraud_assets.core.data.schema import DataValidationError
from fraud_assets.core.data.tables import DEFAULT_CHUNK_ROWS
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.scoring import ScoringStats, score_file
from fraud_assets.core.storage.failures import StorageError, failure_kind


@dataclass(frozen=True)
class FileOutcome:
    """Exactly one of the two is set."""

    stats: ScoringStats | None = None
    rejection: str | None = None


def rejection_reason(error: BaseException, source: str) -> str:
    if isinstance(error, DataValidationError):
        return str(error)
    # Not a rule the reader knows by name, but still this file's content (storage failures
    # never get here): say what it raised, so someone can look.
    return f"{source}: unreadable: {type(error).__name__}: {error}"


def score_or_reject(
    model: FraudModel,
    input_path: str,
    output_path: str,
    *,
    input_fs: fsspec.AbstractFileSystem,
    output_fs: fsspec.AbstractFileSystem,
    source: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> FileOutcome:
    try:
        stats = score_file(model, input_path, output_path, input_fs=input_fs, output_fs=output_fs,
                           chunk_rows=chunk_rows, source=source)
    except Exception as error:
        if failure_kind(error) == "storage":
            if isinstance(error, StorageError):
                raise
            raise StorageError(f"scoring {source}: {type(error).__name__}: {error}") from error
        return FileOutcome(rejection=rejection_reason(error, source))
    return FileOutcome(stats=stats)
