"""A corpus of hostile and tricky transaction files, generated (never committed as data).

Each :class:`HostileFile` is built from a good labelled frame and says what every reader must
answer: ``refused`` files with a message matching ``expect`` (and naming a column and a data
row when ``names_row``); accepted files are tricky but valid and must read unchanged.
Plain module (not a conftest) so the CLI, core and Dagster tests share one corpus.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq

from fraud_assets.core.data.schema import LABEL


@dataclass(frozen=True)
class HostileFile:
    name: str  # file name, extension included
    build: Callable[[pd.DataFrame], bytes]
    expect: str | None  # regex the refusal must match; None: the file is valid
    names_row: bool = False  # the refusal names a column and a data row

    @property
    def refused(self) -> bool:
        return self.expect is not None


def csv_bytes(frame: pd.DataFrame, *, sep: str = ",", line_end: str = "\n") -> bytes:
    return frame.to_csv(index=False, sep=sep, lineterminator=line_end).encode()


def _ulb_csv(frame: pd.DataFrame) -> bytes:
    """The real file's layout: quoted header names, quoted Class values."""
    out = frame.copy()
    out[LABEL] = out[LABEL].astype(np.int64).map(lambda v: f'"{v}"')
    header = ",".join(f'"{c}"' for c in out.columns)
    body = out.to_csv(index=False, header=False, lineterminator="\n", quoting=3)  # QUOTE_NONE
    return (header + "\n" + body).encode()


def _with_cell(column: str, row: int, text: str, *, raw: bytes | None = None):
    """CSV with one cell replaced by ``text`` (data row ``row``, 1-based) or raw bytes."""

    def build(frame: pd.DataFrame) -> bytes:
        lines = csv_bytes(frame).split(b"\n")
        header = lines[0].decode().split(",")
        fields = lines[row].split(b",")
        fields[header.index(column)] = raw if raw is not None else text.encode()
        lines[row] = b",".join(fields)
        return b"\n".join(lines)

    return build


def _with_value(column: str, row: int, value) -> Callable[[pd.DataFrame], bytes]:
    def build(frame: pd.DataFrame) -> bytes:
        out = frame.copy()
        out[column] = out[column].astype(np.float64)
        out.loc[row - 1, column] = value
        return csv_bytes(out)

    return build


def _parquet(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def _parquet_of(frame: pd.DataFrame) -> bytes:
    return _parquet(pa.Table.from_pandas(frame, preserve_index=False))


def _duplicate_parquet(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return _parquet(table.append_column("Amount", table.column("Amount")))


def _bool_class_parquet(frame: pd.DataFrame) -> bytes:
    return _parquet_of(frame.assign(**{LABEL: frame[LABEL].astype(bool)}))


def _scrambled_pages_parquet(frame: pd.DataFrame) -> bytes:
    """Data pages overwritten with noise, footer intact: plausible numbers without CRCs."""
    data = bytearray(
        _parquet(pa.Table.from_pandas(frame, preserve_index=False), compression="none",
                 write_page_checksum=True, use_dictionary=False)
    )
    metadata = pq.read_metadata(io.BytesIO(bytes(data)))
    column = metadata.row_group(0).column(3)  # V3
    # The middle of the column chunk: past the page header (thrift), inside the values.
    middle = column.data_page_offset + column.total_compressed_size // 2
    noise = np.random.default_rng(0).integers(0, 256, 256, dtype=np.uint8).tobytes()
    data[middle : middle + len(noise)] = noise
    return bytes(data)


def _with_parquet_column(column: str, convert: Callable[[pd.Series], pa.Array]):
    """Parquet with ``column`` stored as the Arrow array ``convert`` makes of it."""

    def build(frame: pd.DataFrame) -> bytes:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        index = table.schema.get_field_index(column)
        return _parquet(table.set_column(index, column, convert(frame[column])))

    return build


def _half_floats_with_infinity(values: pd.Series) -> pa.Array:
    # float16 is a legitimate compact storage; its infinity must still be refused.
    half = values.to_numpy().astype(np.float16)
    half[2] = np.inf
    return pa.array(half)


def _with_ids(make: Callable[[int], list], *, parquet: bool = False):
    def build(frame: pd.DataFrame) -> bytes:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.append_column("transaction_id", pa.array(make(len(frame)), pa.string()))
        if parquet:
            return _parquet(table)
        sink = io.BytesIO()
        pa.csv.write_csv(table, sink)
        return sink.getvalue()

    return build


def _truncated_parquet(frame: pd.DataFrame) -> bytes:
    return _parquet_of(frame)[:-100]


def _gzip(frame: pd.DataFrame) -> bytes:
    return gzip.compress(csv_bytes(frame))


def _bz2(frame: pd.DataFrame) -> bytes:
    return bz2.compress(csv_bytes(frame))


def _zip(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        archive.writestr("creditcard.csv", csv_bytes(frame))
    return sink.getvalue()


def _binary(_: pd.DataFrame) -> bytes:
    return np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes() + b"\x00"


def _utf16(frame: pd.DataFrame) -> bytes:
    return csv_bytes(frame).decode().encode("utf-16")


def _spaced(frame: pd.DataFrame) -> bytes:
    return csv_bytes(frame, sep=",").replace(b",", b", ")


def _duplicate_csv(frame: pd.DataFrame) -> bytes:
    lines = csv_bytes(frame).split(b"\n")
    return b"\n".join([lines[0] + b",Amount"] + [line + b",1.0" for line in lines[1:] if line])


def _overlong_row(frame: pd.DataFrame) -> bytes:
    """A row of a million fields, as when line breaks are lost: pandas took gigabytes on it."""
    lines = csv_bytes(frame).split(b"\n")
    lines[3] = b"1," * 1_000_000 + b"1"
    return b"\n".join(lines)


def _ragged(frame: pd.DataFrame) -> bytes:
    lines = csv_bytes(frame).split(b"\n")
    lines[5] += b",7"
    return b"\n".join(lines)


def corpus() -> list[HostileFile]:
    return [
        # Tricky but valid: every reader accepts them.
        HostileFile("ulb_quoted.csv", _ulb_csv, None),
        HostileFile("spaced_header.csv", _spaced, None),
        HostileFile("bom.csv", lambda f: b"\xef\xbb\xbf" + csv_bytes(f), None),
        HostileFile("crlf.csv", lambda f: csv_bytes(f, line_end="\r\n"), None),
        HostileFile("plain.parquet", _parquet_of, None),
        HostileFile("half_floats.parquet",
                    _with_parquet_column("V1", lambda v: pa.array(v.to_numpy().astype(np.float16))), None),
        # Not CSV text at all: say what the file is.
        HostileFile("gzip.csv", _gzip, r"gzip-compressed"),
        HostileFile("bzip2.csv", _bz2, r"bzip2-compressed"),
        HostileFile("zip.csv", _zip, r"zip archive"),
        HostileFile("binary.csv", _binary, r"binary file"),
        HostileFile("utf16.csv", _utf16, r"UTF-16"),
        HostileFile("parquet_named.csv", _parquet_of, r"a Parquet file"),
        HostileFile("semicolons.csv", lambda f: csv_bytes(f, sep=";"), r"wrong delimiter.*';'"),
        HostileFile("tabs.csv", lambda f: csv_bytes(f, sep="\t"), r"wrong delimiter.*TAB"),
        HostileFile("cr_only.csv", lambda f: csv_bytes(f, line_end="\r"), r"line endings.*CR only"),
        HostileFile("empty.csv", lambda f: b"", r"empty file"),
        HostileFile("header_only.csv", lambda f: csv_bytes(f.head(0)), r"no data rows"),
        # Header faults.
        HostileFile("duplicate.csv", _duplicate_csv, r"duplicate column name\(s\): 'Amount'"),
        HostileFile("duplicate.parquet", _duplicate_parquet, r"duplicate column name\(s\): 'Amount'"),
        HostileFile("missing.csv", lambda f: csv_bytes(f.drop(columns=["V7"])), r"missing column\(s\): V7"),
        HostileFile("time_lowercase.csv", lambda f: csv_bytes(f.rename(columns={"Time": "time"})),
                    r"column 'time' should be named 'Time'"),
        HostileFile("class_lowercase.parquet", lambda f: _parquet_of(f.rename(columns={LABEL: "class"})),
                    r"column 'class' should be named 'Class'"),
        # Row faults: column and row named.
        HostileFile("overlong_row.csv", _overlong_row, r"data row 3 is longer than 1024 KiB"),
        HostileFile("ragged.csv", _ragged, r"wrong number of fields.*data row 5", names_row=False),
        HostileFile("latin1.csv", _with_cell("V2", 7, "", raw=b"0.5\xe9"),
                    r"column 'V2'.*not UTF-8.*data row 7", names_row=True),
        HostileFile("text.csv", _with_cell("V9", 4, "abc"), r"column 'V9'.*not numeric", names_row=True),
        HostileFile("nan.csv", _with_cell("V1", 3, "nan"), r"column 'V1'.*NaN", names_row=True),
        HostileFile("inf.csv", _with_cell("V1", 3, "inf"), r"column 'V1'.*infinite", names_row=True),
        HostileFile("negative_amount.csv", _with_value("Amount", 6, -5.0), r"column 'Amount'.*negative",
                    names_row=True),
        HostileFile("amount_1e308.csv", _with_value("Amount", 9, 1e308), r"column 'Amount'.*beyond",
                    names_row=True),
        HostileFile("v_1e39.csv", _with_value("V4", 2, 1e39), r"column 'V4'.*beyond", names_row=True),
        HostileFile("class_fraud.csv", _with_cell(LABEL, 8, "fraud"), r"column 'Class'.*not numeric",
                    names_row=True),
        HostileFile("class_true.csv", _with_cell(LABEL, 8, "True"), r"column 'Class'.*not numeric",
                    names_row=True),
        HostileFile("class_two.csv", _with_cell(LABEL, 8, "2"), r"column 'Class'.*not 0 or 1",
                    names_row=True),
        HostileFile("class_empty.csv", _with_cell(LABEL, 8, ""), r"column 'Class'.*empty",
                    names_row=True),
        HostileFile("class_bool.parquet", _bool_class_parquet, r"column 'Class'.*boolean", names_row=True),
        HostileFile("half_float_inf.parquet", _with_parquet_column("V1", _half_floats_with_infinity),
                    r"column 'V1'.*infinite", names_row=True),
        # A timestamp is not a count of seconds: its nanoseconds since 1970 were scored.
        HostileFile("timestamp_time.parquet",
                    _with_parquet_column("Time", lambda t: pa.array(pd.to_datetime(t, unit="s"))),
                    r"column 'Time'.*date or time, not a number", names_row=True),
        # Ids no label can name.
        HostileFile("empty_id.csv", _with_ids(lambda n: [f"t{i}" if i != 6 else "" for i in range(n)]),
                    r"column 'transaction_id'.*empty transaction id.*data row 7", names_row=True),
        HostileFile("null_id.parquet",
                    _with_ids(lambda n: [f"t{i}" if i != 0 else None for i in range(n)], parquet=True),
                    r"column 'transaction_id'.*empty transaction id.*data row 1", names_row=True),
        # Damaged Parquet.
        HostileFile("truncated.parquet", _truncated_parquet, r"unreadable file"),
        HostileFile("csv_named.parquet", lambda f: csv_bytes(f), r"unreadable file"),
        HostileFile("scrambled_pages.parquet", _scrambled_pages_parquet, r"unreadable file.*(CRC|checksum)"),
    ]


def write_corpus(frame: pd.DataFrame, folder, prefix: str = "") -> dict[str, HostileFile]:
    """Write every file of the corpus into ``folder``; return {path: case}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for case in corpus():
        path = folder / f"{prefix}{case.name}"
        path.write_bytes(case.build(frame))
        written[str(path)] = case
    return written
