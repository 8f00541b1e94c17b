"""Batch scoring in bounded memory: read a chunk, score it, append it to the output.

The output is written under a temporary name and moved into place at the end, so a file
that fails validation half-way leaves no partial predictions behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraud_assets.core.model import FraudModel
from fraud_assets.core.storage import atomic_path
from fraud_assets.core.tables import DEFAULT_CHUNK_ROWS, iter_feature_chunks, table_format

PREDICTION_COLUMNS = ("transaction_id", "fraud_probability", "is_fraud", "model_version")


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


def predictions_batch(
    model: FraudModel, transaction_ids: np.ndarray, probabilities: np.ndarray
) -> pa.RecordBatch:
    ids = pa.array(transaction_ids)
    version = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(len(probabilities), dtype=np.int32)), pa.array([model.version])
    )
    return pa.RecordBatch.from_arrays(
        [ids, pa.array(probabilities), pa.array(probabilities >= model.threshold), version],
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
                self._writer = pq.ParquetWriter(self._handle, schema, compression="zstd")
            else:
                # CSV has no dictionary type: write the version as plain text.
                schema = schema.set(3, pa.field("model_version", pa.string()))
                self._writer = pa_csv.CSVWriter(self._handle, schema)
        if self._format != "parquet":
            batch = batch.set_column(3, "model_version", batch.column(3).cast(pa.string()))
        self._writer.write_batch(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


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
) -> ScoringStats:
    """Score ``input_path`` into ``output_path`` (CSV or Parquet by extension), row order kept.

    ``on_chunk(chunk, probabilities)`` lets callers fold extra work (drift tallies) into the
    same single pass over the file.
    """
    input_fs = input_fs or fsspec.filesystem("file")
    output_fs = output_fs or fsspec.filesystem("file")
    started = time.perf_counter()
    rows = flagged = 0
    metadata = {"source_file": source or input_path, "model_version": model.version}
    with atomic_path(output_fs, output_path) as temporary:
        with output_fs.open(temporary, "wb") as handle:
            writer = _PredictionWriter(handle, table_format(output_path), metadata)
            try:
                for chunk in iter_feature_chunks(
                    input_path, fs=input_fs, chunk_rows=chunk_rows, source=source
                ):
                    probabilities = model.predict_proba(chunk.features)
                    batch = predictions_batch(model, chunk.transaction_ids, probabilities)
                    writer.write(batch)
                    rows += len(probabilities)
                    flagged += int(np.count_nonzero(probabilities >= model.threshold))
                    if on_chunk is not None:
                        on_chunk(chunk, probabilities)
            finally:
                writer.close()
    return ScoringStats(
        rows=rows,
        flagged=flagged,
        seconds=time.perf_counter() - started,
        model_version=model.version,
        threshold=model.threshold,
    )
