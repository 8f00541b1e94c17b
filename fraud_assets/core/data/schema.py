"""The ``creditcard.csv`` schema and the validation every input goes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

TIME = "Time"
AMOUNT = "Amount"
LABEL = "Class"
PCA_COLUMNS: tuple[str, ...] = tuple(f"V{i}" for i in range(1, 29))
FEATURE_COLUMNS: tuple[str, ...] = (TIME, *PCA_COLUMNS, AMOUNT)
LABELLED_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, LABEL)
# Feature columns that must not be negative (seconds since the first day, money); every
# validator (files, the scoring fast path, the service) takes the rule from here.
NON_NEGATIVE_COLUMNS: frozenset[str] = frozenset({TIME, AMOUNT})

# The largest magnitude any feature may have. The model works in float32 (largest finite
# value 3.4e38) and divides by its training scale, which is below 1 for most V columns: a
# value near the float32 limit became infinity inside the model and was scored silently.
# Eight orders of magnitude of headroom below that limit keep every transform finite, while
# no real amount, time or PCA component comes near it.
MAX_ABS_VALUE = 1e30

# Batch files may carry their own transaction identifier under one of these names.
ID_COLUMN_CANDIDATES: tuple[str, ...] = ("transaction_id", "TransactionID", "id")

SECONDS_PER_DAY = 86_400


class DataValidationError(ValueError):
    """A file that does not follow the schema.

    The message names the file, the column, how many rows are bad and the first bad row
    (1-based data row, header excluded), so the person fixing the file knows where to look.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def __reduce__(self):
        # Raised on a Dask worker, it travels back pickled: rebuilt from its own arguments
        # rather than from the message, which __init__ does not take.
        return type(self), (self.source, self.problems)


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    frauds: int | None

    @property
    def prevalence(self) -> float | None:
        if self.frauds is None or self.rows == 0:
            return None
        return self.frauds / self.rows


def _describe_bad_rows(column: str, bad: np.ndarray, what: str, row_offset: int) -> str:
    positions = np.flatnonzero(bad)
    first = int(positions[0]) + 1 + row_offset
    return f"column '{column}': {len(positions)} row(s) {what} (first at data row {first})"


def empty_ids_problem(column: str, empty: np.ndarray, row_offset: int) -> str | None:
    """The id rule of every reader: a row whose id is empty can never be named by a label."""
    if not empty.any():
        return None
    return _describe_bad_rows(column, empty, "with an empty transaction id", row_offset)


def validate_frame(
    frame: pd.DataFrame,
    source: str,
    *,
    require_label: bool,
    row_offset: int = 0,
) -> ValidationReport:
    """Check ``frame`` against the schema and raise :class:`DataValidationError` on any problem.

    ``row_offset`` is the number of data rows before this frame in its file, so chunked
    readers report positions in the whole file.
    """
    import pandas as pd  # here, so that scoring, which never builds a frame, doesn't load it

    required = LABELLED_COLUMNS if require_label else FEATURE_COLUMNS
    # One label rule everywhere: a file that carries Class gets it checked even where the
    # label is not needed (scoring, drift), so "2" is refused by every entry point alike.
    if not require_label and LABEL in frame.columns:
        required = LABELLED_COLUMNS
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError(source, [f"missing column(s): {', '.join(missing)}"])
    if len(frame) == 0 and row_offset == 0:
        raise DataValidationError(source, ["no data rows"])

    problems: list[str] = []
    for column in required:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            # CSV "True" is not a number, so a Parquet boolean is not one either.
            problems.append(
                _describe_bad_rows(column, series.notna().to_numpy(), "boolean, not numeric", row_offset)
            )
            continue
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            # pandas turns a timestamp into nanoseconds since 1970, a "valid" number.
            problems.append(
                _describe_bad_rows(column, series.notna().to_numpy(), "a date or time, not a number",
                                   row_offset)
            )
            continue
        if not pd.api.types.is_numeric_dtype(series):
            numeric = pd.to_numeric(series, errors="coerce")
            non_numeric = numeric.isna().to_numpy() & series.notna().to_numpy()
            if non_numeric.any():
                problems.append(_describe_bad_rows(column, non_numeric, "not numeric", row_offset))
                continue
            series = numeric
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        missing_values = np.isnan(values)
        if missing_values.any():
            problems.append(_describe_bad_rows(column, missing_values, "empty or NaN", row_offset))
        infinite = np.isinf(values)
        if infinite.any():
            problems.append(_describe_bad_rows(column, infinite, "infinite", row_offset))
        finite = ~(missing_values | infinite)
        too_large = finite & (np.abs(values) > MAX_ABS_VALUE)
        if too_large.any():
            problems.append(
                _describe_bad_rows(column, too_large, f"beyond +/-{MAX_ABS_VALUE:g}", row_offset)
            )
        if column in NON_NEGATIVE_COLUMNS:
            negative = finite & (values < 0)
            if negative.any():
                problems.append(_describe_bad_rows(column, negative, "negative", row_offset))
        if column == LABEL:
            not_binary = finite & ~np.isin(values, (0.0, 1.0))
            if not_binary.any():
                problems.append(_describe_bad_rows(column, not_binary, "not 0 or 1", row_offset))
    id_column = find_id_column(frame.columns)
    if id_column is not None:
        ids = frame[id_column]
        empty = ids.isna().to_numpy()
        if not pd.api.types.is_numeric_dtype(ids):
            empty = empty | (ids.astype("string").str.strip() == "").fillna(False).to_numpy(dtype=bool)
        problem = empty_ids_problem(id_column, empty, row_offset)
        if problem:
            problems.append(problem)
    if problems:
        raise DataValidationError(source, problems)

    frauds = int(frame[LABEL].sum()) if require_label else None
    return ValidationReport(rows=len(frame), frauds=frauds)


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """A validated frame's features as every model path takes them: float32, in
    :data:`FEATURE_COLUMNS` order (float64 values rounded once, as the batch reader does)."""
    return frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32)


def find_id_column(columns: list[str] | pd.Index) -> str | None:
    """The batch file's own transaction-id column, if it has one."""
    for candidate in ID_COLUMN_CANDIDATES:
        if candidate in columns:
            return candidate
    return None
