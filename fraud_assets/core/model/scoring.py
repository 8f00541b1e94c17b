"""Batch scoring in bounded memory: read a chunk, score it, append it to the output.

The output is written under a temporary name and moved into place at the end, so a file
that fails validation half-way leaves no partial predictions behind; the temporary is only
created once the first chunk has passed validation, so a file refused at its header or first
rows writes nothing at all (a crash then has nothing to orphan either).

Parsing runs in a background thread ahead of everything else (see
:func:`~fraud_assets.core.data.tables.iter_feature_chunks`); validation, prediction and writing
follow in the caller's thread. All of them release the GIL for their heavy parts, so the
wall time approaches the parse time instead of the sum.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraud_assets.core.data.feature_chunks import iter_feature_chunks, numeric_array
from fraud_assets.core.data.tables import DEFAULT_CHUNK_ROWS, OnRows, table_format
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.storage.failures import open_guarded
from fraud_assets.core.storage.locations import atomic_path

PREDICTION_COLUMNS = ("transaction_id", "fraud_probability", "is_fraud", "model_version")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringStats:
    rows: int
    flagged: int
    seconds: float
    model_version: str
    threshold: float

    @property
    def flagged_rate(self) -> float:
        return self.flagged / self.rows if self.rows else 0.0

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "flagged": self.flagged,
            "flagged_rate": round(self.flagged_rate, 6),
            "seconds": round(self.seconds, 3),
            "model_version": self.model_version,
            "threshold": self.threshold,
        }


# Output columns are built from their buffers, as tables.numeric_array explains: pa.array
# would import pandas.
def _bool_array(mask: np.ndarray) -> pa.Array:
    bits = np.packbits(mask, bitorder="little")  # Arrow's bitmap order
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)])


def _string_array(strings: list[str]) -> pa.Array:
    encoded = [text.encode() for text in strings]
    offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def predictions_batch(
    model: FraudModel, ids: pa.Array, probabilities: np.ndarray
) -> pa.RecordBatch:
    # One dictionary entry and an index per row, rather than a million copies of the string.
    version = pa.DictionaryArray.from_arrays(
        numeric_array(np.zeros(len(probabilities), dtype=np.int32)), _string_array([model.version])
    )
    return pa.RecordBatch.from_arrays(
        [
            ids,
            numeric_array(probabilities),
            _bool_array(probabilities >= model.threshold),
            version,
        ],
        names=list(PREDICTION_COLUMNS),
    )


class _PredictionWriter:
    """Streams record batches to CSV or Parquet on an open binary handle."""

    def __init__(self, handle, fmt: str, metadata: dict[str, str]):
        self._handle, self._format, self._metadata = handle, fmt, metadata
        self._writer = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            schema = batch.schema.with_metadata(self._metadata)
            if self._format == "parquet":
                # Page checksums let a reader catch a scrambled page under an intact footer.
                self._writer = pq.ParquetWriter(
                    self._handle, schema, compression="zstd", write_page_checksum=True
                )
            else:
                # Arrow's CSV writer prints a dictionary column as its values: the same text
                # as a string column, without building a string per row first.
                self._writer = pa_csv.CSVWriter(self._handle, schema)
        self._writer.write_batch(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


# XGBoost scores rows independently, so a chunk is scored a slice at a time: the model's own
# feature matrix (standardised, log-amount, hour) then exists for one slice, not a chunk.
PREDICT_ROWS = 65_536


def predict_chunk(model: FraudModel, features: np.ndarray) -> np.ndarray:
    """``model.predict_proba(features)``, the same values, computed a slice at a time."""
    probabilities = np.empty(len(features), dtype=np.float32)
    for start in range(0, len(features), PREDICT_ROWS):
        stop = start + PREDICT_ROWS
        probabilities[start:stop] = model.predict_proba(features[start:stop])
    return probabilities


def score_file(
    model: FraudModel,
    input_path: str,
    output_path: str,
    *,
    input_fs: fsspec.AbstractFileSystem | None = None,
    output_fs: fsspec.AbstractFileSystem | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    source: str | None = None,
    on_chunk=None,
    on_rows: OnRows | None = None,
) -> ScoringStats:
    """Score ``input_path`` into ``output_path`` (CSV or Parquet by extension), row order kept.

    ``on_chunk(chunk, probabilities)`` lets callers fold extra work (drift tallies) into the
    same single pass over the file; ``on_rows(rows)`` hears of each chunk once it is written.
    """
    input_fs = input_fs or fsspec.filesystem("file")
    output_fs = output_fs or fsspec.filesystem("file")
    started = time.perf_counter()
    rows = flagged = 0
    metadata = {"source_file": source or input_path, "model_version": model.version}
    chunks = iter_feature_chunks(input_path, fs=input_fs, chunk_rows=chunk_rows, source=source)
    # closing: a failure here (prediction, writing, on_chunk) releases the input now, not
    # when the traceback that holds this frame is collected.
    with contextlib.closing(chunks):
        first = next(chunks)  # the header and first rows are checked before anything is written
        with atomic_path(output_fs, output_path) as temporary:
            with open_guarded(output_fs, temporary, "wb") as handle:
                writer = _PredictionWriter(handle, table_format(output_path), metadata)
                try:
                    for chunk in itertools.chain([first], chunks):
                        probabilities = predict_chunk(model, chunk.features)
                        batch = predictions_batch(model, chunk.ids, probabilities)
                        writer.write(batch)
                        rows += len(probabilities)
                        flagged += int(np.count_nonzero(probabilities >= model.threshold))
                        if on_chunk is not None:
                            on_chunk(chunk, probabilities)
                        log.debug("%s: rows %d to %d scored and written", source or input_path,
                                  rows - len(probabilities) + 1, rows)
                        if on_rows is not None:
                            on_rows(len(probabilities))
                finally:
                    writer.close()
    stats = ScoringStats(
        rows=rows,
        flagged=flagged,
        seconds=time.perf_counter() - started,
        model_version=model.version,
        threshold=model.threshold,
    )
    log.info("%s: scored %d rows with %s (%d flagged) into %s in %.1f s", source or input_path,
             rows, model.version, flagged, output_path, stats.seconds)
    return stats
