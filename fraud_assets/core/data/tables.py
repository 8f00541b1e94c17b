"""Reading and writing transaction tables (CSV or Parquet, chosen by file extension).

Readers validate against :mod:`fraud_assets.core.schema` and turn every parser failure into a
:class:`~fraud_assets.core.schema.DataValidationError` naming the file, column and rows.
Chunked readers keep memory bounded for files far larger than RAM.

pandas is imported only by the functions that build or parse DataFrames: the scoring path
goes from Arrow to numpy and never needs it, and importing it costs about a second.
"""

from __future__ import annotations

import contextlib
import itertools
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraud_assets.core.read_ahead import read_ahead
from fraud_assets.core.schema import (
    FEATURE_COLUMNS,
    LABEL,
    LABELLED_COLUMNS,
    NON_NEGATIVE_COLUMNS,
    DataValidationError,
    feature_matrix,
    find_id_column,
    validate_frame,
)
from fraud_assets.core.storage import atomic_path

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# Rows scored (and held as float32) at a time. Small chunks keep memory low and shorten the
# tail after the last parse, when only prediction and writing are left; 65,536 was 0.2 s
# faster than 262,144 on a million rows and no slower than 32,768.
DEFAULT_CHUNK_ROWS = 65_536


def table_format(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith(".csv"):
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
    import pandas as pd

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
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            # Never let a parser exception escape as anything but a validation error.
            problems = [f"unreadable CSV: {error}"]
    if not problems:
        problems = [f"unreadable CSV (columns {', '.join(columns)}): {cause}"]
    return DataValidationError(source, problems)


def _arrow_error(source: str, error: Exception) -> DataValidationError:
    return DataValidationError(source, [f"unreadable file: {error}"])


def _is_unreadable_file(error: Exception) -> bool:
    """Arrow's verdict on the file's bytes, as opposed to a failure to fetch them.

    A corrupt Parquet page raises a plain ``OSError`` ("Couldn't deserialize thrift"); its
    subclasses (connection reset, timeout, file not found, permission) are about storage and
    must not get a good file quarantined.
    """
    return isinstance(error, pa.ArrowInvalid) or type(error) is OSError


def read_transactions(
    path: str,
    *,
    fs: fsspec.AbstractFileSystem | None = None,
    require_label: bool = True,
    source: str | None = None,
) -> pd.DataFrame:
    """Read and validate a whole table; columns beyond the schema are kept as they are."""
    import pandas as pd

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
            if not _is_unreadable_file(error):
                raise
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
    """Yield validated chunks of ``chunk_rows`` rows (the last may be shorter) in file order;
    raise on the first bad chunk."""
    fs = fs or _local_fs()
    source = source or path
    columns = LABELLED_COLUMNS if require_label else FEATURE_COLUMNS
    header = _checked_header(fs, path, source, columns)

    offset = 0
    for slabs in _iter_chunks(_iter_blocks(fs, path, source, header, chunk_rows), chunk_rows):
        frame = pa.concat_tables(list(slabs)).to_pandas()
        validate_frame(frame, source, require_label=require_label, row_offset=offset)
        offset += len(frame)
        yield frame
    if offset == 0:
        raise DataValidationError(source, ["no data rows"])


def _checked_header(fs, path: str, source: str, columns: tuple[str, ...]) -> list[str]:
    header = _header(fs, path, source)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataValidationError(source, [f"missing column(s): {', '.join(missing)}"])
    return header


# --- reading in bounded memory ------------------------------------------------------------------
#
# A file is read as small Arrow blocks, regrouped into "slabs" of about SLAB_ROWS rows (the unit
# that is validated and converted), and slabs are grouped into chunks of exactly ``chunk_rows``
# rows (the unit callers see: errors count bad rows per chunk, on_chunk gets a chunk). Only the
# float32 matrix of a chunk grows to the chunk's size; its float64 Arrow data never exists whole.

# Arrow's streaming CSV reader parses up to 32 blocks ahead of its consumer, so its memory is
# about 32 block sizes whatever the file size: 1 MiB blocks (~1,900 rows of this schema) keep
# that near 32 MiB, and were as fast as larger ones.
CSV_BLOCK_BYTES = 1 << 20
# Parquet: read pages through a small buffer instead of pre-loading a whole row group (a
# pandas-written file holds up to a million rows per row group).
PARQUET_BUFFER_BYTES = 1 << 20
# Rows converted at a time: big enough that per-call overheads vanish, small enough (16 MB of
# float64) not to matter for memory.
SLAB_ROWS = 65_536
# Parsed blocks that may wait for the scorer: about 16 MB of float64 either way (a CSV block
# of 1 MiB holds about 1,900 rows; a Parquet batch, a slab).
CSV_READ_AHEAD = 32
PARQUET_READ_AHEAD = 1


def _iter_blocks(fs, path, source, header, chunk_rows) -> Iterator[pa.RecordBatch]:
    """The file's rows as Arrow record batches, in order, none empty."""
    numeric = tuple(c for c in LABELLED_COLUMNS if c in header)
    if table_format(path) == "parquet":
        with fs.open(path, "rb") as handle:
            try:
                parquet = pq.ParquetFile(handle, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
                for batch in parquet.iter_batches(batch_size=min(chunk_rows, SLAB_ROWS)):
                    if batch.num_rows:
                        yield batch
            except (pa.ArrowInvalid, OSError) as error:
                if not _is_unreadable_file(error):
                    raise
                raise _arrow_error(source, error) from error
        return

    with fs.open(path, "rb") as handle:
        try:
            reader = pa_csv.open_csv(
                handle,
                read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
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


def _numbered_slabs(blocks: Iterator[pa.RecordBatch], chunk_rows: int) -> Iterator[tuple[int, pa.Table]]:
    """(chunk number, slab): blocks regrouped into slabs of about SLAB_ROWS rows that never
    straddle a chunk boundary. Slicing Arrow data is free (no copy)."""
    slab_rows = SLAB_ROWS
    chunk = filled = pending_rows = 0
    pending: list[pa.RecordBatch] = []
    for block in blocks:
        start = 0
        while start < block.num_rows:
            take = min(block.num_rows - start, chunk_rows - filled - pending_rows)
            pending.append(block.slice(start, take))
            start += take
            pending_rows += take
            chunk_full = filled + pending_rows == chunk_rows
            if chunk_full or pending_rows >= slab_rows:
                filled, pending_rows = filled + pending_rows, 0
                yield chunk, _drain(pending)
                if chunk_full:
                    chunk, filled = chunk + 1, 0
    if pending:
        yield chunk, _drain(pending)


def _drain(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table of ``batches``, emptying the list so that no second reference lingers."""
    table = pa.Table.from_batches(batches)
    batches.clear()
    return table


def _iter_chunks(blocks: Iterator[pa.RecordBatch], chunk_rows: int) -> Iterator[Iterator[pa.Table]]:
    """Each chunk as a lazy sequence of slabs: a chunk is consumed slab by slab, never whole."""
    for _, slabs in itertools.groupby(_numbered_slabs(blocks, chunk_rows), key=itemgetter(0)):
        yield map(itemgetter(1), slabs)


def numeric_array(values: np.ndarray) -> pa.Array:
    """A numeric numpy vector as an Arrow array sharing its memory.

    pyarrow's generic constructors (``pa.array``, even ``pa.scalar``) import pandas, when it
    is installed, to test whether their argument is a pandas object: about a second that
    scoring, which never builds a DataFrame, would otherwise pay at start-up.
    """
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)]
    )


@dataclass(frozen=True)
class FeatureChunk:
    """A block of rows ready for the model: float32 features plus row identities.

    Only these two are kept (no DataFrame), so a chunk costs 4 bytes a value.
    """

    features: np.ndarray  # shape (rows, len(FEATURE_COLUMNS)), float32, schema order
    ids: pa.Array  # the file's id column, or the 0-based row numbers

    def __len__(self) -> int:
        return len(self.features)


def iter_feature_chunks(
    path: str,
    *,
    fs: fsspec.AbstractFileSystem | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    source: str | None = None,
) -> Iterator[FeatureChunk]:
    """Chunks for scoring: ids are the file's id column if present, else the 0-based row number.

    Validation and its messages are those of :func:`iter_transaction_chunks`; rows whose
    columns are numeric and valid go straight from Arrow to numpy, without pandas.

    Parsing runs in a background thread, a few MiB ahead; everything else (validation,
    conversion, and whatever the caller does with a chunk) runs in the caller's thread.
    Parsing is the slowest stage, so it never waits for the others: on 2 cores, scoring a
    million CSV rows took 1.5 s instead of 1.8 s with the whole read one chunk ahead.
    """
    fs = fs or _local_fs()
    source = source or path
    header = _checked_header(fs, path, source, FEATURE_COLUMNS)
    id_column = find_id_column(header)

    blocks = read_ahead(
        _iter_blocks(fs, path, source, header, chunk_rows),
        depth=PARQUET_READ_AHEAD if table_format(path) == "parquet" else CSV_READ_AHEAD,
    )
    row_number = 0
    # Closing stops the parsing thread and closes the file at once, also when a chunk fails
    # here or the caller stops early: the caller may be about to move the file (quarantine).
    with contextlib.closing(blocks):
        for slabs in _iter_chunks(blocks, chunk_rows):
            features, id_arrays = _chunk_features(slabs, chunk_rows, id_column, source, row_number)
            if id_column is not None:
                ids = _id_array(pa.concat_arrays(id_arrays))
            else:
                ids = numeric_array(np.arange(row_number, row_number + len(features), dtype=np.int64))
            row_number += len(features)
            yield FeatureChunk(features=features, ids=ids)
    if row_number == 0:
        raise DataValidationError(source, ["no data rows"])


def _chunk_features(
    slabs: Iterator[pa.Table], chunk_rows: int, id_column: str | None, source: str, row_offset: int
) -> tuple[np.ndarray, list[pa.Array]]:
    """A chunk's validated float32 matrix (FEATURE_COLUMNS order) and its id column pieces."""
    # Fortran order: each column of a slab is one contiguous write. Pages that a short last
    # chunk never touches are never allocated.
    features = np.empty((chunk_rows, len(FEATURE_COLUMNS)), dtype=np.float32, order="F")
    id_arrays: list[pa.Array] = []
    filled = 0
    for slab in slabs:
        if not _fill_if_clean(features[filled : filled + slab.num_rows], slab):
            # Something is wrong, or a column needs pandas' coercion (text, nulls, booleans):
            # the rest of the chunk takes the pandas route, which words the errors exactly as
            # validate_frame always has. Earlier slabs were clean, so they add no problems.
            slab = pa.concat_tables([slab, *slabs])
            features[filled : filled + slab.num_rows] = _features_via_pandas(
                slab, source, row_offset + filled
            )
        if id_column is not None:
            id_arrays.extend(slab.column(id_column).chunks)
        filled += slab.num_rows
    return features[:filled], id_arrays




def _fill_if_clean(out: np.ndarray, slab: pa.Table) -> bool:
    """Write the slab's features into ``out`` if every value is numeric and valid."""
    columns = [slab.column(name) for name in FEATURE_COLUMNS]
    if not all(_plain_numeric(column) for column in columns):
        return False
    for index, (name, column) in enumerate(zip(FEATURE_COLUMNS, columns, strict=True)):
        start = 0
        for piece in column.chunks:
            values = _numpy_view(piece)
            # Checked on the file's own values, as validate_frame does: a float64 value that
            # overflows only in float32 is not an input error.
            if not _values_ok(values, name in NON_NEGATIVE_COLUMNS):
                return False
            # numpy's float64 -> float32 cast rounds exactly as pandas' to_numpy(float32) did.
            out[start : start + len(values), index] = values
            start += len(values)
    return True


def _numpy_view(array: pa.Array) -> np.ndarray:
    """A null-free integer or float Arrow array as a numpy view of its data buffer.

    ``Array.to_numpy`` goes through pyarrow's pandas bridge, which imports pandas.
    """
    kind = array.type
    code = "f" if pa.types.is_floating(kind) else "i" if pa.types.is_signed_integer(kind) else "u"
    dtype = np.dtype(f"{code}{kind.bit_width // 8}")
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
    )


def _plain_numeric(column: pa.ChunkedArray) -> bool:
    """Float or integer without nulls: its numpy view needs none of pandas' conversion rules."""
    kind = column.type
    return (pa.types.is_floating(kind) or pa.types.is_integer(kind)) and column.null_count == 0


def _values_ok(values: np.ndarray, non_negative: bool) -> bool:
    if values.dtype.kind != "f":
        return not non_negative or bool((values >= 0).all())
    if non_negative:
        # NaN fails both comparisons, so one pass covers NaN, infinities and negatives.
        return bool(((values >= 0) & (values < np.inf)).all())
    return bool(np.isfinite(values).all())


def _features_via_pandas(table: pa.Table, source: str, row_offset: int) -> np.ndarray:
    """The original conversion: validate the DataFrame (raising on problems), then to float32."""
    frame = table.to_pandas()
    validate_frame(frame, source, require_label=False, row_offset=row_offset)
    return feature_matrix(frame)


def _id_array(column: pa.Array) -> pa.Array:
    """The id column as the output gets it, typed as the pandas route typed it."""
    kind = column.type
    if column.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_string(kind)):
        return column
    if column.null_count == 0 and (pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        return column.cast(pa.string())
    # Rare shapes (nulls, floats, dictionaries): through pandas, exactly as before.
    return pa.array(column.to_pandas().to_numpy())


def write_table(
    frame: pd.DataFrame, path: str, *, fs: fsspec.AbstractFileSystem | None = None
) -> None:
    """Write ``frame`` as CSV or Parquet (by extension), atomically.

    CSV goes through Arrow's writer: about ten times faster than ``DataFrame.to_csv`` (0.8 s
    against 9.5 s for 284,807 rows), with floats in their shortest round-trip form, so the
    values read back identical.
    """
    fs = fs or _local_fs()
    fmt = table_format(path)
    with atomic_path(fs, path) as temporary:
        with fs.open(temporary, "wb") as handle:
            if fmt == "parquet":
                frame.to_parquet(handle, index=False)
            else:
                _write_csv(frame, handle)


def _write_csv(frame: pd.DataFrame, handle) -> None:
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A column Arrow cannot type (text among numbers, say): pandas writes it as it is.
        frame.to_csv(handle, index=False)
        return
    pa_csv.write_csv(table, handle)


def is_table_file(name: str) -> bool:
    return posixpath.basename(name).lower().endswith(TABLE_SUFFIXES) and not posixpath.basename(
        name
    ).startswith(".")


def has_label(path: str, fs: fsspec.AbstractFileSystem | None = None) -> bool:
    fs = fs or _local_fs()
    return LABEL in _header(fs, path, path)
