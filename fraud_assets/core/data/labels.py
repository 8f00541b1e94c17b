"""Fraud labels that arrive after scoring: reading, validating and merging label files.

A label file is named by the day it was reported (``YYYY-MM-DD*.csv|parquet``) and names
transactions by ``transaction_id`` and ``transaction_date`` (the day of the batch that held
the transaction), with ``Class`` (1 = fraud, 0 = confirmed genuine; 1 when the column is
absent, as most feeds carry frauds only) and, when a day's ids are row numbers, the batch
file's name in ``batch_file``.

Label files are small (a day's reported cases), so they are read whole. They meet the rules of
every transaction file (``file_rules.py``: header, UTF-8, what a file that is not CSV text
is), and every problem is a :class:`~fraud_assets.core.data.schema.DataValidationError`
naming the file, column and row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import fsspec

from fraud_assets.core.data.csv_errors import first_invalid_utf8, malformed_rows
from fraud_assets.core.data.file_rules import (
    HEAD_BYTES,
    check_header,
    csv_header,
    refusing_content_failures,
)
from fraud_assets.core.data.schema import LABEL, DataValidationError
from fraud_assets.core.data.tables import TABLE_SUFFIXES, table_format
from fraud_assets.core.storage.failures import open_guarded

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TRANSACTION_ID = "transaction_id"
TRANSACTION_DATE = "transaction_date"
BATCH_FILE = "batch_file"
REPORTED_ON = "reported_on"
SOURCE_FILE = "label_file"
FILE_ROW = "file_row"  # 1-based data row in its label file, for messages only
REQUIRED_COLUMNS = (TRANSACTION_ID, TRANSACTION_DATE)
INPUT_COLUMNS = (TRANSACTION_ID, TRANSACTION_DATE, LABEL, BATCH_FILE)
# One row per labelled transaction, as transaction_labels stores a day.
LABEL_COLUMNS = (TRANSACTION_DATE, BATCH_FILE, TRANSACTION_ID, LABEL, REPORTED_ON, SOURCE_FILE)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REPORT_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def report_date(name: str) -> str | None:
    """The day a label file was reported, from its name; None when the name has no date."""
    match = _REPORT_DATE.match(posixpath.basename(name))
    if not match:
        return None
    try:
        dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return match.group(1)


def batch_stem(name: str) -> str:
    """A batch file's name without folder and table suffix: how predictions are named."""
    stem = posixpath.basename(str(name))
    for suffix in TABLE_SUFFIXES:
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def read_label_file(path: str, *, fs: fsspec.AbstractFileSystem, source: str | None = None) -> pd.DataFrame:
    """A validated label file as rows of :data:`LABEL_COLUMNS` (ids and dates as text,
    ``batch_file`` reduced to its stem, empty when not given).

    Raises only :class:`DataValidationError` (the file's content: quarantine it) or the
    storage's :class:`~fraud_assets.core.storage.failures.StorageError` (try again later).
    """
    source = source or path
    reported = report_date(path)
    if reported is None:
        raise DataValidationError(source, ["file name does not start with its report date (YYYY-MM-DD)"])
    with refusing_content_failures(source):
        return _validated(_read_raw(path, fs, source), path, source, reported)


def _validated(frame: pd.DataFrame, path: str, source: str, reported: str) -> pd.DataFrame:
    import pandas as pd

    problems: list[str] = []
    ids = _text(frame[TRANSACTION_ID])
    _flag(problems, TRANSACTION_ID, ids == "", "empty")
    dates = _text(frame[TRANSACTION_DATE])
    bad_dates = ~dates.map(_is_date)
    _flag(problems, TRANSACTION_DATE, bad_dates, "not a date (YYYY-MM-DD)")
    _flag(problems, TRANSACTION_DATE, ~bad_dates & (dates > reported), f"after the report date {reported}")
    labels = _labels(frame, problems)
    batch = (
        _text(frame[BATCH_FILE]).map(batch_stem) if BATCH_FILE in frame.columns
        else pd.Series("", index=frame.index)
    )
    rows = pd.DataFrame(
        {
            TRANSACTION_DATE: dates,
            BATCH_FILE: batch,
            TRANSACTION_ID: ids,
            LABEL: labels,
            REPORTED_ON: reported,
            SOURCE_FILE: posixpath.basename(path),
            FILE_ROW: range(1, len(frame) + 1),
        }
    )
    if not problems:
        repeated = rows.duplicated([TRANSACTION_DATE, BATCH_FILE, TRANSACTION_ID], keep="first")
        _flag(problems, TRANSACTION_ID, repeated, "label a transaction already labelled in this file")
    if problems:
        raise DataValidationError(source, problems)
    return rows.reset_index(drop=True)


def _read_raw(path: str, fs, source: str) -> pd.DataFrame:
    try:
        fmt = table_format(path)
    except ValueError as error:
        raise DataValidationError(source, [str(error)]) from error
    return _read_parquet(path, fs, source) if fmt == "parquet" else _read_csv(path, fs, source)


def _read_csv(path: str, fs, source: str) -> pd.DataFrame:
    """The file's cells as text under the header rule of every CSV file (file_rules.py)."""
    import pandas as pd

    # Label files are a day's reports: small enough to hold whole.
    with open_guarded(fs, path) as handle:
        content = handle.read()
    header = check_header(
        csv_header(content[:HEAD_BYTES], source), source, REQUIRED_COLUMNS, INPUT_COLUMNS
    )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        located = first_invalid_utf8(fs, path, header)
        raise DataValidationError(source, [located or f"not UTF-8 text: {error}"]) from error
    # Text throughout: ids such as "000123" keep their zeros, and Class is checked by one
    # rule below instead of by a parser's guesses. Blank lines are no rows.
    rows = [row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if row][1:]
    ragged = [number for number, row in enumerate(rows, start=1) if len(row) != len(header)]
    if ragged:
        located = malformed_rows(fs, path, header) or (
            f"{len(ragged)} row(s) with the wrong number of fields, expected {len(header)} "
            f"(first at data row {ragged[0]})"
        )
        raise DataValidationError(source, [located])
    return pd.DataFrame(rows, columns=header, dtype=object)


# Arrow types a label column may have: what its cells are read as text, numbers or dates from.
def _readable_type(arrow_type) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return (
        pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
        or pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type) or pa.types.is_date(arrow_type)
        or pa.types.is_null(arrow_type)
    )


def _read_parquet(path: str, fs, source: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with open_guarded(fs, path) as handle:
        parquet = pq.ParquetFile(handle)
        schema = parquet.schema_arrow
        names = check_header(list(schema.names), source, REQUIRED_COLUMNS, INPUT_COLUMNS)
        used = [c for c in INPUT_COLUMNS if c in names]
        wrong = [
            f"column '{c}': Parquet type {schema.field(c).type} is not text, a number or a date"
            for c in used if not _readable_type(schema.field(c).type)
        ]
        if wrong:
            raise DataValidationError(source, wrong)
        return parquet.read(columns=used).to_pandas()


def _text(column: pd.Series) -> pd.Series:
    """Values as stripped text; missing values become empty strings. Whole floats read from
    Parquet (1.0) are written as integers so that they match the batch's ids."""
    import pandas as pd

    if pd.api.types.is_float_dtype(column):
        column = column.map(lambda v: "" if v != v else (str(int(v)) if float(v).is_integer() else repr(v)))
    return column.astype("string").fillna("").str.strip().str.strip('"').astype(object)


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _labels(frame: pd.DataFrame, problems: list[str]):
    """``Class`` as 0/1 integers: the same rule as for labelled transactions, 0 or 1 only
    (no booleans, no empty values); 1 for every row when the column is absent."""
    import numpy as np
    import pandas as pd

    if LABEL not in frame.columns:
        return pd.Series(1, index=frame.index, dtype="int8")
    column = frame[LABEL]
    if pd.api.types.is_bool_dtype(column):
        _flag(problems, LABEL, np.ones(len(column), dtype=bool), "not 0 or 1 (booleans are not labels)")
        return pd.Series(0, index=frame.index, dtype="int8")
    numbers = pd.to_numeric(_text(column), errors="coerce")
    bad = ~numbers.isin([0, 1])
    _flag(problems, LABEL, bad, "not 0 or 1")
    return numbers.where(~bad, 0).astype("int8")


def _flag(problems: list[str], column: str, bad, what: str) -> None:
    import numpy as np

    positions = np.flatnonzero(np.asarray(bad, dtype=bool))
    if len(positions):
        problems.append(
            f"column '{column}': {len(positions)} row(s) {what} (first at data row {positions[0] + 1})"
        )


def merge_labels(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Every label known, one row per transaction: the latest report wins (by report date,
    then file name), so a correction reported later replaces an earlier label, and the same
    file applied twice changes nothing."""
    import pandas as pd

    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int8" if c == LABEL else object) for c in LABEL_COLUMNS})
    merged = pd.concat(frames, ignore_index=True).sort_values(
        [REPORTED_ON, SOURCE_FILE], kind="stable"
    )
    merged = merged.drop_duplicates([TRANSACTION_DATE, BATCH_FILE, TRANSACTION_ID], keep="last")
    return merged.loc[:, list(LABEL_COLUMNS)].sort_values([BATCH_FILE, TRANSACTION_ID], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class KnownTransactions:
    """The transactions scored on one day: ids per batch file (by stem)."""

    ids_by_batch: dict[str, set[str]]

    def unknown(self, labels: pd.DataFrame) -> tuple[list[int], list[int]]:
        """Positions of labels naming no scored transaction, and of labels whose id alone is
        ambiguous (row-number ids repeat across a day's files: ``batch_file`` must say which)."""
        owners: dict[str, int] = {}
        for ids in self.ids_by_batch.values():
            for transaction in ids:
                owners[transaction] = owners.get(transaction, 0) + 1
        unknown, ambiguous = [], []
        for position, (batch, transaction) in enumerate(
            zip(labels[BATCH_FILE], labels[TRANSACTION_ID], strict=True)
        ):
            if batch:
                if transaction not in self.ids_by_batch.get(batch, ()):
                    unknown.append(position)
            elif owners.get(transaction, 0) == 0:
                unknown.append(position)
            elif owners[transaction] > 1:
                ambiguous.append(position)
        return unknown, ambiguous

    def resolve(self, labels: pd.DataFrame) -> pd.DataFrame:
        """Labels with ``batch_file`` filled in where the id alone names one batch."""
        batch_of = {t: b for b, ids in self.ids_by_batch.items() for t in ids}
        filled = labels.copy()
        missing = filled[BATCH_FILE] == ""
        filled.loc[missing, BATCH_FILE] = filled.loc[missing, TRANSACTION_ID].map(batch_of).fillna("")
        return filled


def check_known(labels: pd.DataFrame, known: KnownTransactions, source: str, day: str) -> None:
    """Raise naming the first label of ``day`` that matches no scored transaction."""
    unknown, ambiguous = known.unknown(labels)
    problems: list[str] = []
    if unknown:
        first = labels.iloc[unknown[0]]
        problems.append(
            f"column '{TRANSACTION_ID}': {len(unknown)} label(s) for {day} name no scored "
            f"transaction (first at data row {first[FILE_ROW]}: {first[TRANSACTION_ID]!r}"
            + (f" in batch {first[BATCH_FILE]!r}" if first[BATCH_FILE] else "") + ")"
        )
    if ambiguous:
        problems.append(
            f"column '{BATCH_FILE}': {len(ambiguous)} label(s) for {day} name an id that several "
            f"batch files of the day use (first at data row {labels.iloc[ambiguous[0]][FILE_ROW]}); "
            "say which file in batch_file"
        )
    if problems:
        raise DataValidationError(source, problems)


def with_labels(rows: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """1 where a row's transaction (its batch file and id) was reported as fraud, else 0
    (unreported or confirmed genuine). Labels carry their batch (resolved when they were
    applied)."""
    import numpy as np
    import pandas as pd

    if rows.empty:
        return np.zeros(0, dtype=np.int8)
    frauds = labels.loc[labels[LABEL] == 1, [BATCH_FILE, TRANSACTION_ID]]
    keys = pd.MultiIndex.from_frame(rows[[BATCH_FILE, TRANSACTION_ID]])
    fraud_keys = pd.MultiIndex.from_frame(frauds)
    return keys.isin(fraud_keys).astype(np.int8)


def batch_rows(frame: pd.DataFrame, path: str, first_row: int = 0) -> pd.DataFrame:
    """A batch file's feature rows named as labels name them: by the file's stem and the
    transaction's id, or its row number in the file when the file has no id column.
    ``first_row`` is the file row of ``frame``'s first row when the file is read in chunks."""
    import numpy as np

    from fraud_assets.core.data.schema import FEATURE_COLUMNS, find_id_column

    id_column = find_id_column(list(frame.columns))
    ids = (frame[id_column].astype(str).to_numpy() if id_column
           else np.arange(first_row, first_row + len(frame)).astype(str))
    rows = frame.loc[:, list(FEATURE_COLUMNS)].copy()
    rows[BATCH_FILE] = batch_stem(path)
    rows[TRANSACTION_ID] = ids
    return rows
