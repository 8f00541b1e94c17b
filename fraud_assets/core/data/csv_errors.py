"""Locating what is wrong in a CSV file that failed to parse: ragged rows, then bad values.

Only called after a fast parse has failed, so it may be slow: it reads the file again to name
the column and the first bad row.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pa_csv

from fraud_assets.core.data.file_rules import HEAD_BYTES
from fraud_assets.core.data.schema import LABEL, DataValidationError, validate_frame
from fraud_assets.core.storage.failures import open_guarded


def malformed_rows(fs, path: str, header: list[str]) -> str | None:
    """Rows whose field count differs from the header's, as a problem description."""
    bad = []

    def remember(row) -> str:
        bad.append(row)
        return "skip"

    with open_guarded(fs, path) as handle:
        try:
            reader = pa_csv.open_csv(
                handle,
                # The header rule's names, as the fast reader uses them.
                read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1, use_threads=False),
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


def first_invalid_utf8(fs, path: str, header: list[str]) -> str | None:
    """The first field holding bytes that are not UTF-8 (a Latin-1 ``é``, say), by data row
    and column: decoders report a byte offset into a buffer, which helps nobody."""
    with open_guarded(fs, path) as handle:
        handle.readline()
        for row, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                field = line[: error.start].count(b",")
                column = header[field] if field < len(header) else f"field {field + 1}"
                return (
                    f"column '{column}': byte 0x{line[error.start]:02x} is not UTF-8 text "
                    f"(first at data row {row}); save the file as UTF-8"
                )
    return None


def overlong_row(fs, path: str, max_row_bytes: int) -> str | None:
    """The first row longer than the reader's block, which no valid file has (the streaming
    reader cannot parse it): looked for first, because pandas, handed a 50 MB row of
    25 million fields, grew to 21 GB before it failed."""
    with open_guarded(fs, path) as handle:
        handle.readline(HEAD_BYTES)  # the header rule already read the header from these
        row = 0
        while True:
            line = handle.readline(max_row_bytes + 1)
            if not line:
                return None
            row += 1
            if len(line) > max_row_bytes and not line.endswith(b"\n"):
                return (f"data row {row} is longer than {max_row_bytes // 1024} KiB: not a row of "
                        "transactions (a missing line break?)")


def locate_csv_error(
    fs, path: str, source: str, columns: tuple[str, ...], header: list[str], cause: Exception,
    *, max_row_bytes: int,
) -> DataValidationError:
    """Slow path, only after a parse failure: find which column and rows hold bad values."""
    import pandas as pd

    overlong = overlong_row(fs, path, max_row_bytes)
    if overlong is not None:
        return DataValidationError(source, [overlong])

    # A ragged row made pandas raise ParserError (escaping as a non-validation error) or, when
    # short, was blamed on no column at all: report the row structure first.
    not_utf8 = first_invalid_utf8(fs, path, header)
    if not_utf8 is not None:
        return DataValidationError(source, [not_utf8])
    malformed = malformed_rows(fs, path, header)
    if malformed is not None:
        return DataValidationError(source, [malformed])
    problems: list[str] = []
    offset = 0
    with open_guarded(fs, path) as handle:
        try:
            for chunk in pd.read_csv(
                handle, dtype=str, chunksize=500_000, names=header, header=0, skipinitialspace=True
            ):
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
