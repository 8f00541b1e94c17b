"""Rules every transaction file meets before its rows are parsed, whatever reads it.

One header rule (names parsed as CSV, surrounding spaces and a byte-order mark ignored, no
duplicates) and one description of files that are not delimited text at all, so that a
gzip archive is called compressed instead of "missing columns". Label files take the same rules
from here.
"""

from __future__ import annotations

import contextlib
import csv
from collections import Counter
from collections.abc import Iterator
from typing import TypeVar

from fraud_assets.core.data.schema import DataValidationError
from fraud_assets.core.storage.failures import failure_kind

_Item = TypeVar("_Item")

# Enough to hold any sane header (31 names of a few characters) many times over.
HEAD_BYTES = 64 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "a gzip-compressed file: decompress it first"),
    (b"PK\x03\x04", "a zip archive (an Excel workbook is one): export or extract the CSV"),
    (b"BZh", "a bzip2-compressed file: decompress it first"),
    (b"\xfd7zXZ\x00", "an xz-compressed file: decompress it first"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file: decompress it first"),
    (b"PAR1", "a Parquet file: name it .parquet"),
    (b"\xff\xfe", "UTF-16 text: save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text: save it as UTF-8"),
)
_OTHER_DELIMITERS = (";", "\t", "|")


def describe_foreign_bytes(head: bytes) -> str | None:
    """What a file that should be CSV text is instead, from its first bytes; None if text."""
    for magic, description in _MAGIC:
        if head.startswith(magic):
            return f"not CSV text but {description}"
    if b"\x00" in head:
        return "not CSV text but a binary file (it contains NUL bytes)"
    first_line_end = head.find(b"\n")
    if first_line_end == -1 and b"\r" in head:
        return "line endings: rows end in CR only (old Mac style); save with LF or CRLF"
    return None


def parse_csv_header(head: bytes) -> list[str]:
    """The column names of a CSV header line, as every reader of the file must see them."""
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first name.
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _HeaderError(
            f"header row is not UTF-8 text (byte 0x{line[error.start]:02x} at column "
            f"position {error.start + 1} of the header)"
        ) from error
    if not text.strip():
        raise _HeaderError("empty file (no header row)")
    names = next(csv.reader([text], skipinitialspace=True))
    return [name.strip() for name in names]


class _HeaderError(Exception):
    """A header problem before the file's name is attached (see :func:`csv_header`)."""


def csv_header(head: bytes, source: str) -> list[str]:
    """Names of a CSV file from its first bytes, or a :class:`DataValidationError` saying
    what the file is when it is not comma-separated text."""
    foreign = describe_foreign_bytes(head)
    if foreign is not None:
        raise DataValidationError(source, [foreign])
    try:
        names = parse_csv_header(head)
    except _HeaderError as error:
        raise DataValidationError(source, [str(error)]) from error
    if len(names) == 1:
        for delimiter in _OTHER_DELIMITERS:
            if delimiter in names[0]:
                shown = "TAB" if delimiter == "\t" else f"'{delimiter}'"
                raise DataValidationError(
                    source, [f"wrong delimiter: fields are separated by {shown}, expected ','"]
                )
    return names


def check_header(
    names: list[str], source: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[str]:
    """Refuse duplicate, missing or miscased column names; return ``names`` unchanged.

    A duplicated name is ambiguous (which ``Amount`` is the amount?) and crashed pandas and
    Arrow alike, so it is refused whether or not the column is one the schema uses.
    A name that differs from a schema column (``required`` or ``optional``) only by case is
    refused too: read as an unknown column, a label file's ``class`` of 0 became "absent,
    so fraud" and every transaction it named was labelled 1.
    """
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise DataValidationError(
            source, [f"duplicate column name(s): {', '.join(repr(n) for n in duplicated)}"]
        )
    present = set(names)
    expected = {column.casefold(): column for column in (*required, *optional)}
    miscased = [
        f"column '{name}' should be named '{expected[name.casefold()]}' (names are case-sensitive)"
        for name in names
        if name.casefold() in expected and expected[name.casefold()] not in present
        and name != expected[name.casefold()]
    ]
    if miscased:
        raise DataValidationError(source, miscased)
    missing = [c for c in required if c not in names]
    if missing:
        raise DataValidationError(source, [f"missing column(s): {', '.join(missing)}"])
    return names


@contextlib.contextmanager
def refusing_content_failures(source: str) -> Iterator[None]:
    """Any failure in the block that is not the storage's (see
    :func:`~fraud_assets.core.storage.failures.failure_kind`) raised as a
    :class:`DataValidationError` naming the file.

    The readers name what they know (columns, rows); this is the net under them, so that a
    file no rule anticipated is still refused like any bad file (exit 2, quarantine) instead
    of ending in a traceback, or being retried as if storage had failed.
    """
    try:
        yield
    except DataValidationError:
        raise
    except Exception as error:
        if failure_kind(error) == "storage":
            raise
        raise DataValidationError(
            source, [f"unreadable file: {type(error).__name__}: {error}"]
        ) from error


def content_failures_refused(items: Iterator[_Item], source: str) -> Iterator[_Item]:
    """``items``, read under :func:`refusing_content_failures`."""
    with refusing_content_failures(source):
        yield from items
