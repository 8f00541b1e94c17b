"""Many batch files scored across the workers: each worker scores whole files with the same
:func:`~fraud_assets.core.model.scoring.score_file`, so every output is the one a single
process writes, moved into place atomically (a retried file simply rewrites its own output)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import fsspec
from distributed import Client, as_completed, wait

from fraud_assets.core.data.inputs import TableSet
from fraud_assets.core.data.schema import DataValidationError
from fraud_assets.core.data.tables import DEFAULT_CHUNK_ROWS
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.file_outcomes import FileOutcome, score_or_reject
from fraud_assets.core.model.scoring import ScoringStats, score_file

# A file whose worker died is scored again elsewhere; a file that kills this many workers in
# turn is the file's fault and fails the run rather than the whole cluster.
ALLOWED_RETRIES = 2


def portable_model(model: FraudModel) -> FraudModel:
    """The bundle without its cached predictors: only bytes and numbers travel to a worker."""
    return FraudModel(version=model.version, booster_bytes=model.booster_bytes,
                      preprocessor=model.preprocessor, threshold=model.threshold,
                      log_odds_correction=model.log_odds_correction, calibration=model.calibration)


def score_files_on_cluster(
    client: Client,
    model: FraudModel,
    tables: TableSet,
    outputs: list[str],
    *,
    output_options: dict | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> list[ScoringStats | DataValidationError]:
    """Per input, in input order: its stats, or the DataValidationError that refused it (the
    other files are scored all the same); any other failure is raised."""
    shared = client.scatter(portable_model(model), broadcast=True)
    futures = client.map(
        _score_one, tables.urls, outputs, model=shared, input_options=tables.storage_options,
        output_options=output_options or {}, chunk_rows=chunk_rows, pure=False, retries=ALLOWED_RETRIES,
    )
    wait(futures)
    return [future.result() for future in futures]  # the first other failure is raised


def _score_one(url: str, output: str, *, model: FraudModel, input_options: dict, output_options: dict,
               chunk_rows: int) -> ScoringStats | DataValidationError:
    input_fs, input_path = fsspec.core.url_to_fs(url, **input_options)
    output_fs, output_path = fsspec.core.url_to_fs(output, **output_options)
    try:
        return score_file(model, input_path, output_path, input_fs=input_fs, output_fs=output_fs,
                          chunk_rows=chunk_rows, source=url)
    except DataValidationError as refusal:
        # A value, not a failure: Dask would retry a failed task, reading the bad file again.
        return refusal


@dataclass(frozen=True)
class FileToScore:
    """A batch file and where its predictions go, as URLs a worker opens with the options."""

    input_url: str
    output_url: str


def outcomes_on_cluster(
    client: Client,
    model: FraudModel,
    files: Sequence[FileToScore],
    *,
    input_options: dict,
    output_options: dict,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[tuple[int, FileOutcome]]:
    """``(index into files, outcome)`` as each file finishes, so the caller records every
    finished file even when another fails. A file refused for its content is an outcome; a
    storage failure, or a file that kept killing workers, is raised once the rest are done."""
    if not files:
        return
    shared = client.scatter(portable_model(model), broadcast=True)
    futures = client.map(
        _outcome_of_one, [file.input_url for file in files], [file.output_url for file in files],
        model=shared, input_options=input_options, output_options=output_options, chunk_rows=chunk_rows,
        pure=False, retries=ALLOWED_RETRIES,
    )
    index = {future.key: number for number, future in enumerate(futures)}
    first_error: BaseException | None = None
    for future in as_completed(futures):
        if future.status == "finished":
            yield index[future.key], future.result()
        elif first_error is None:
            first_error = future.exception()
    if first_error is not None:
        raise first_error


def _outcome_of_one(url: str, output: str, *, model: FraudModel, input_options: dict, output_options: dict,
                    chunk_rows: int) -> FileOutcome:
    input_fs, input_path = fsspec.core.url_to_fs(url, **input_options)
    output_fs, output_path = fsspec.core.url_to_fs(output, **output_options)
    return score_or_reject(model, input_path, output_path, input_fs=input_fs, output_fs=output_fs,
                           chunk_rows=chunk_rows, source=url)
