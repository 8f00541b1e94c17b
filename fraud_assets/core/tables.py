"""Reading and writing transaction tables (CSV or Parquet, chosen by file extension).

Readers validate against :mod:`fraud_assets.core.schema` and turn every parser failure into a
:class:`~fraud_assets.core.schema.DataValidationError` naming the file, column and rows.
Chunked readers keep memory bounded for files far larger than RAM.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraud_assets.core.schema import (
    FEATURE_COLUMNS,
    LABEL,
    LABELLED_COLUMNS,
    DataValidationError,
    find_id_column,
    validate_frame,
)
from fraud_assets.core.storage import atomic_path

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
DEFAULT_CHUNK_ROWS = 262_144


def table_format(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".csv") or lowered.endswith(".csv.gz"):
        return "csv"
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    raise ValueError(f"{path}: unsupported file type (expected .csv or .parquet)")


def _local_fs() -> fsspec.AbstractFileSystem:
    return fsspec.filesystem("file")


def _csv_convert_options(columns: tuple[str, ...], header: list[str]) -> pa_csv.ConvertOptions:
    # Forcing float64 makes a stray text value fail loudly instead of silently turning the
    # whole column into strings; the failure is then located precisely by _locate_csv_error.
    types = {c: pa.float64() for c in columns}
    # Columns outside the schema (transaction ids, notes) are read as text: the streaming
    # reader infers types from the first block only, so an id column that is numeric early
    # and alphanumeric later, or a column empty in the first block, made a valid file that
    # spans several blocks "unreadable"; text also keeps ids such as "000123" intact.
    types.update({c: pa.string() for c in header if c not in types})
    return pa_csv.ConvertOptions(column_types=types)


def _malformed_rows(fs, path: str, header: list[str]) -> str | None:
    """Rows whose field count differs from the header's, as a problem description."""
    bad = []

    def remember(row) -> str:
        bad.append(row)
        return "skip"

    with fs.open(path, "rb") as handle:
        try:
            reader = pa_csv.open_csv(
                handle,
                read_options=pa_csv.ReadOptions(use_threads=False),
                parse_options=pa_csv.ParseOptions(invalid_row_handler=remember),
                # Everything as text: only the row structure is checked on this pass.
                convert_options=pa_csv.ConvertOptions(
                    column_types={c: pa.string() for c in header}
                ),
            )
            for _ in reader:
                pass
        except pa.ArrowInvalid:
            pass  # something other than a ragged row; the pandas pass below reports it
    if not bad:
        return None
    first = bad[0]
    # ``number`` is the physical line (header is line 1), -1 when pyarrow does not know it.
    where = f" (first at data row {first.number - 1})" if first.number > 0 else ""
    return (
        f"{len(bad)} row(s) with the wrong number of fields, expected {first.expected_columns}"
        f"{where}"
    )


def _locate_csv_error(
    fs, path: str, source: str, columns: tuple[str, ...], header: list[str], cause: Exception
) -> DataValidationError:
    """Slow path, only after a parse failure: find which column and rows hold bad values."""
    # A ragged row made pandas raise ParserError (escaping as a non-validation error) or, when
    # short, was blamed on no column at all: report the row structure first.
    malformed = _malformed_rows(fs, path, header)
    if malformed is not None:
        return DataValidationError(source, [malformed])
    problems: list[str] = []
    offset = 0
    with fs.open(path, "rb") as handle:
        try:
            for chunk in pd.read_csv(handle, dtype=str, chunksize=500_000):
                try:
                    # Check Class too when the file has it: pyarrow parses it as float64, so
                    # a text label fails the parse and must be located like any other column
                    # (require_label=False here reported only "unreadable CSV").
                    validate_frame(
                        chunk, source, require_label=LABEL in columns, row_offset=offset
                    )
                except DataValidationError as error:
                    problems.extend(error.problems)
                    break
                offset += len(chunk)
        except pd.errors.ParserError as error:
            # Never let a parser exception escape as anything but a validation error.
            problems = [f"unreadable CSV: {error}"]
    if not problems:
        problems = [f"unreadable CSV (columns {', '.join(columns)}): {cause}"]
    return DataValidationError(source, problems)


def _arrow_error(source: str, error: Exception) -> DataValidationError:
    return DataValidationError(source, [f"unreadable file: {error}"])


def read_transactions(
    path: str,
    *,
    fs: fsspec.AbstractFileSystem | None = None,
    require_label: bool = True,
    source: str | None = None,
) -> pd.DataFrame:
    """Read and validate a whole table; columns beyond the schema are kept as they are."""
    fs = fs or _local_fs()
    source = source or path
    chunks = list(iter_transaction_chunks(path, fs=fs, require_label=require_label, source=source))
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return frame


def _header(fs, path: str, source: str) -> list[str]:
    if table_format(path) == "parquet":
        try:
            with fs.open(path, "rb") as handle:
                return list(pq.ParquetFile(handle).schema_arrow.names)
        except (pa.ArrowInvalid, OSError) as error:
            raise _arrow_error(source, error) from error
    with fs.open(path, "rb") as handle:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first name;
        # pyarrow and pandas skip it too, so without this a valid file lost its Time column.
        first_line = handle.readline().decode("utf-8-sig", errors="replace").strip()
    if not first_line:
        raise DataValidationError(source, ["empty file (no header row)"])
    return [name.strip().strip('"') for name in first_line.split(",")]


def iter_transaction_chunks(
    path: str,
    *,
    fs: fsspec.AbstractFileSystem | None = None,
    require_label: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    source: str | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield validated chunks in file order; raise on the first bad chunk."""
    fs = fs or _local_fs()
    source = source or path
    columns = LABELLED_COLUMNS if require_label else FEATURE_COLUMNS
    header = _header(fs, path, source)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataValidationError(source, [f"missing column(s): {', '.join(missing)}"])

    offset = 0
    for batch in _iter_record_batches(fs, path, source, header, chunk_rows):
        frame = batch.to_pandas()
        validate_frame(frame, source, require_label=require_label, row_offset=offset)
        offset += len(frame)
        yield frame
    if offset == 0:
        raise DataValidationError(source, ["no data rows"])


def _iter_record_batches(fs, path, source, header, chunk_rows) -> Iterator[pa.RecordBatch]:
    numeric = tuple(c for c in LABELLED_COLUMNS if c in header)
    if table_format(path) == "parquet":
        with fs.open(path, "rb") as handle:
            try:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows):
                    yield batch
            except pa.ArrowInvalid as error:
                raise _arrow_error(source, error) from error
        return

    # ~1 MiB of CSV per ~2,000 rows of this schema: size blocks to approximate chunk_rows.
    block_size = max(1 << 20, chunk_rows * 560)
    with fs.open(path, "rb") as handle:
        try:
            reader = pa_csv.open_csv(
                handle,
                read_options=pa_csv.ReadOptions(block_size=block_size),
                convert_options=_csv_convert_options(numeric, header),
            )
            for batch in reader:
                if batch.num_rows:
                    yield batch
        except pa.ArrowInvalid as error:
            if "Empty CSV file" in str(error):
                # _header already found a non-empty first line, so the file has a header
                # (e.g. one without a final newline) and nothing else.
                raise DataValidationError(source, ["no data rows"]) from error
            raise _locate_csv_error(fs, path, source, numeric, header, error) from error


@dataclass(frozen=True)
class FeatureChunk:
    """A block of rows ready for the model: float32 features plus row identities."""

    features: np.ndarray  # shape (rows, len(FEATURE_COLUMNS)), float32, schema order
    transaction_ids: np.ndarray
    frame: pd.DataFrame


def iter_feature_chunks(
    path: str,
    *,
    fs: fsspec.AbstractFileSystem | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    source: str | None = None,
) -> Iterator[FeatureChunk]:
    """Chunks for scoring: ids are the file's id column if present, else the 0-based row number."""
    row_number = 0
    for frame in iter_transaction_chunks(
        path, fs=fs, require_label=False, chunk_rows=chunk_rows, source=source
    ):
        id_column = find_id_column(frame.columns)
        if id_column is not None:
            ids = frame[id_column].to_numpy()
        else:
            ids = np.arange(row_number, row_number + len(frame), dtype=np.int64)
        row_number += len(frame)
        features = frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32)
        yield FeatureChunk(features=features, transaction_ids=ids, frame=frame)


def write_table(
    frame: pd.DataFrame, path: str, *, fs: fsspec.AbstractFileSystem | None = None
) -> None:
    """Write ``frame`` as CSV or Parquet (by extension), atomically."""
    fs = fs or _local_fs()
    fmt = table_format(path)
    with atomic_path(fs, path) as temporary:
        with fs.open(temporary, "wb") as handle:
            if fmt == "parquet":
                frame.to_parquet(handle, index=False)
            else:
                frame.to_csv(handle, index=False)


def is_table_file(name: str) -> bool:
    return posixpath.basename(name).lower().endswith(TABLE_SUFFIXES) and not posixpath.basename(
        name
    ).startswith(".")


def has_label(path: str, fs: fsspec.AbstractFileSystem | None = None) -> bool:
    fs = fs or _local_fs()
    return LABEL in _header(fs, path, path)
