"""Reading and validating transaction tables: the real file's layout, every bad input, chunks,
ids and atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from fraud_assets.core.data import tables
from fraud_assets.core.data.feature_chunks import iter_feature_chunks
from fraud_assets.core.data.schema import (
    FEATURE_COLUMNS,
    LABEL,
    LABELLED_COLUMNS,
    DataValidationError,
    validate_frame,
)
from fraud_assets.core.data.tables import (
    has_label,
    iter_transaction_chunks,
    read_transactions,
    write_table,
)
from fraud_assets_tests.ulb_files import REAL_HEADER, REAL_ROWS, replace_cell, write_ulb_csv

BAD_ROWS = [7, 12]  # 1-based data rows that each bad-value case corrupts


@pytest.fixture(scope="module")
def small_frame(labelled_frame) -> pd.DataFrame:
    """40 rows with the ULB columns and dtypes, frauds included."""
    frauds = labelled_frame[labelled_frame[LABEL] == 1].head(5)
    genuine = labelled_frame[labelled_frame[LABEL] == 0].head(35)
    frame = pd.concat([genuine, frauds]).sort_values("Time", kind="stable").reset_index(drop=True)
    assert list(frame.columns) == list(LABELLED_COLUMNS)
    return frame


def _files(directory) -> list[str]:
    return sorted(os.listdir(directory))


# --- the real file's layout -------------------------------------------------------------------


def test_real_creditcard_header_and_rows_verbatim_are_accepted(tmp_path):
    path = tmp_path / "creditcard.csv"
    path.write_text(REAL_HEADER + "\n" + "\n".join(REAL_ROWS) + "\n")
    frame = read_transactions(str(path))
    assert list(frame.columns) == list(LABELLED_COLUMNS)
    assert len(frame) == 2
    assert frame["V1"].tolist() == [-1.3598071336738, 1.19185711131486]
    assert frame["Amount"].tolist() == [149.62, 2.69]
    # The quoted "0" is the number 0, not the text "0".
    assert frame[LABEL].tolist() == [0, 0]
    assert pd.api.types.is_numeric_dtype(frame[LABEL])
    assert has_label(str(path))


def test_ulb_layout_round_trips_every_value(tmp_path, small_frame):
    path = write_ulb_csv(small_frame, tmp_path / "creditcard.csv")
    text = path.read_text()
    # The helper really produces the real file's quoting: quoted names, quoted Class values.
    assert text.startswith('"Time","V1","V2"')
    assert text.splitlines()[1].endswith(',"0"')
    assert ',"1"' in text

    frame = read_transactions(str(path))
    assert list(frame.columns) == list(LABELLED_COLUMNS)
    np.testing.assert_array_equal(
        frame.to_numpy(dtype=np.float64), small_frame.to_numpy(dtype=np.float64)
    )
    assert int(frame[LABEL].sum()) == 5


def test_byte_order_mark_before_header_is_accepted(tmp_path, small_frame):
    # Excel's "CSV UTF-8" starts with a BOM; the header reader used to keep it in "Time".
    path = write_ulb_csv(small_frame, tmp_path / "excel.csv")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(read_transactions(str(path))) == len(small_frame)


def test_unlabelled_file_reads_without_label_but_not_with(tmp_path, small_frame):
    path = write_ulb_csv(small_frame.drop(columns=LABEL), tmp_path / "batch.csv")
    assert len(read_transactions(str(path), require_label=False)) == len(small_frame)
    assert not has_label(str(path))
    with pytest.raises(DataValidationError, match=r"missing column\(s\): Class"):
        read_transactions(str(path), require_label=True)


# --- bad values: every problem names the file, the column, the count and the first row ----------

# (column, raw CSV text, expected wording)
BAD_VALUES = [
    ("V3", "abc", "not numeric"),
    ("V3", '"12,5"', "not numeric"),  # a decimal comma, quoted
    ("V5", "", "empty or NaN"),
    ("V5", "NaN", "empty or NaN"),
    ("V7", "inf", "infinite"),
    ("V7", "-inf", "infinite"),
    ("Amount", "-5.25", "negative"),
    ("Time", "-1", "negative"),
    ("Class", '"2"', "not 0 or 1"),
    ("Class", "2", "not 0 or 1"),
    ("Class", '"fraud"', "not numeric"),
]


def assert_names_bad_rows(message: str, path, column: str, wording: str) -> None:
    """The message names the file, the column, the problem, the count and the first row."""
    assert str(path) in message
    assert f"column '{column}'" in message
    assert wording in message
    assert "2 row(s)" in message
    assert "first at data row 7" in message


@pytest.mark.parametrize(("column", "text", "wording"), BAD_VALUES)
def test_bad_csv_value_names_file_column_count_and_first_row(
    tmp_path, small_frame, column, text, wording
):
    path = write_ulb_csv(small_frame, tmp_path / "bad.csv")
    replace_cell(path, BAD_ROWS, column, text)
    with pytest.raises(DataValidationError) as caught:
        read_transactions(str(path))
    assert_names_bad_rows(str(caught.value), path, column, wording)
    assert caught.value.source == str(path)


def test_several_bad_columns_are_all_reported(tmp_path, small_frame):
    path = write_ulb_csv(small_frame, tmp_path / "bad.csv")
    replace_cell(path, [3], "V1", "")
    replace_cell(path, [9, 10, 11], "Amount", "-1")
    with pytest.raises(DataValidationError) as caught:
        read_transactions(str(path))
    problems = caught.value.problems
    assert any("'V1'" in p and "1 row(s)" in p and "data row 3" in p for p in problems)
    assert any("'Amount'" in p and "3 row(s)" in p and "data row 9" in p for p in problems)


def test_non_numeric_label_is_located_even_when_labels_are_not_required(tmp_path, small_frame):
    # Was "unreadable CSV (columns ...)" with no column or row.
    path = write_ulb_csv(small_frame, tmp_path / "bad.csv")
    replace_cell(path, [4], LABEL, '"yes"')
    with pytest.raises(DataValidationError, match=r"column 'Class': 1 row\(s\) not numeric "
                       r"\(first at data row 4\)"):
        read_transactions(str(path), require_label=False)


@pytest.mark.parametrize("extra", [",7", ""], ids=["extra-field", "missing-field"])
def test_ragged_rows_are_a_validation_error_with_their_row(tmp_path, small_frame, extra):
    # An extra field used to escape as pandas' ParserError (a traceback in the CLI).
    path = write_ulb_csv(small_frame, tmp_path / "ragged.csv")
    lines = path.read_text().split("\n")
    for row in (5, 20):
        lines[row] = lines[row] + extra if extra else lines[row].rsplit(",", 1)[0]
    path.write_text("\n".join(lines))
    with pytest.raises(DataValidationError) as caught:
        read_transactions(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert "2 row(s) with the wrong number of fields" in message
    assert "first at data row 5" in message


def test_missing_column_is_named(tmp_path, small_frame):
    path = write_ulb_csv(small_frame.drop(columns=["V17", "Amount"]), tmp_path / "short.csv")
    with pytest.raises(DataValidationError) as caught:
        read_transactions(str(path))
    assert str(path) in str(caught.value)
    assert "missing column(s): V17, Amount" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "wording"),
    [
        (REAL_HEADER + "\n", "no data rows"),
        (REAL_HEADER, "no data rows"),  # no final newline: used to say "no header row"
        (REAL_HEADER + "\n\n\n", "no data rows"),
        ("", "empty file (no header row)"),
    ],
    ids=["header-only", "header-no-newline", "header-blank-lines", "zero-bytes"],
)
def test_files_without_data_rows_are_rejected(tmp_path, content, wording):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataValidationError) as caught:
        read_transactions(str(path))
    assert str(path) in str(caught.value)
    assert wording in str(caught.value)


def test_validate_frame_reports_rows_frauds_and_offsets(small_frame):
    report = validate_frame(small_frame, "frame", require_label=True)
    assert (report.rows, report.frauds) == (40, 5)
    assert report.prevalence == pytest.approx(5 / 40)
    bad = small_frame.astype({LABEL: np.float64})
    bad.loc[[2, 30], LABEL] = 0.5
    # row_offset shifts reported positions, so chunk readers report rows of the whole file.
    with pytest.raises(DataValidationError,
                       match=r"column 'Class': 2 row\(s\) not 0 or 1 \(first at data row 1003\)"):
        validate_frame(bad, "frame", require_label=True, row_offset=1_000)
    # One label rule: a Class the file carries is checked even where no label is needed.
    with pytest.raises(DataValidationError, match=r"column 'Class': 2 row\(s\) not 0 or 1"):
        validate_frame(bad, "frame", require_label=False)
    assert validate_frame(bad.drop(columns=[LABEL]), "frame", require_label=False).frauds is None


# --- Parquet input: the same checks -------------------------------------------------------------


def _parquet_value(text: str):
    text = text.strip('"')
    if text == "":
        return np.nan
    try:
        return float(text)
    except ValueError:
        return text


@pytest.mark.parametrize(("column", "text", "wording"), BAD_VALUES)
def test_bad_parquet_value_names_file_column_count_and_first_row(
    tmp_path, small_frame, column, text, wording
):
    frame = small_frame.copy()
    value = _parquet_value(text)
    if isinstance(value, str):
        frame[column] = frame[column].astype(str)  # a text column, as a careless export writes
    elif column == LABEL:
        frame[column] = frame[column].astype(np.float64)
    frame.loc[[r - 1 for r in BAD_ROWS], column] = value
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataValidationError) as caught:
        read_transactions(str(path))
    assert_names_bad_rows(str(caught.value), path, column, wording)


def test_parquet_good_missing_column_empty_and_zero_bytes(tmp_path, small_frame):
    good = tmp_path / "good.parquet"
    small_frame.to_parquet(good, index=False)
    pd.testing.assert_frame_equal(read_transactions(str(good)), small_frame, check_dtype=False)

    missing = tmp_path / "missing.parquet"
    small_frame.drop(columns="V9").to_parquet(missing, index=False)
    with pytest.raises(DataValidationError, match=r"missing.parquet: missing column\(s\): V9"):
        read_transactions(str(missing))

    empty = tmp_path / "empty.parquet"
    small_frame.iloc[:0].to_parquet(empty, index=False)
    with pytest.raises(DataValidationError, match=r"empty.parquet: no data rows"):
        read_transactions(str(empty))

    zero = tmp_path / "zero.parquet"
    zero.write_bytes(b"")
    with pytest.raises(DataValidationError, match=r"zero.parquet: unreadable file"):
        read_transactions(str(zero))


# --- chunked reading ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_frame(labelled_frame) -> pd.DataFrame:
    return labelled_frame.head(6_000).reset_index(drop=True)


def _consume(iterator) -> tuple[int, DataValidationError]:
    """Chunks yielded before the error, and the error."""
    yielded = 0
    with pytest.raises(DataValidationError) as caught:
        for _ in iterator:
            yielded += 1
    return yielded, caught.value


def test_parquet_bad_row_in_later_chunk_reports_absolute_row(tmp_path, long_frame):
    frame = long_frame.head(1_000).copy()
    frame.loc[776, "Amount"] = -3.0  # data row 777
    path = tmp_path / "batch.parquet"
    frame.to_parquet(path, index=False)
    yielded, error = _consume(iter_transaction_chunks(str(path), chunk_rows=100))
    assert yielded == 7  # rows 1-700 were fine; the chunk with row 777 fails
    assert "column 'Amount': 1 row(s) negative (first at data row 777)" in str(error)


@pytest.mark.parametrize(
    ("text", "wording"), [("", "empty or NaN"), ("oops", "not numeric")],
    ids=["nan-fast-path", "text-slow-path"],
)
def test_csv_bad_row_in_later_chunk_reports_absolute_row(tmp_path, long_frame, text, wording):
    path = write_ulb_csv(long_frame, tmp_path / "big.csv")
    # Both bad rows sit in one chunk: reading stops at the first bad chunk, so the count
    # covers that chunk (a later chunk's bad rows are not counted).
    replace_cell(path, [5_500, 5_510], "V4", text)
    yielded, error = _consume(iter_transaction_chunks(str(path), chunk_rows=1_000))
    assert yielded >= 1, "the file should span several chunks; the bad rows are in a later one"
    assert f"column 'V4': 2 row(s) {wording} (first at data row 5500)" in str(error)


def test_csv_chunks_cover_the_file_in_order(tmp_path, long_frame):
    path = write_ulb_csv(long_frame, tmp_path / "big.csv")
    chunks = list(iter_transaction_chunks(str(path), chunk_rows=1_000, require_label=True))
    assert len(chunks) > 1
    combined = pd.concat(chunks, ignore_index=True)
    np.testing.assert_array_equal(
        combined.to_numpy(np.float64), long_frame.to_numpy(np.float64)
    )


# --- row identities ---------------------------------------------------------------------------


def test_id_column_is_kept_across_chunks(tmp_path, long_frame):
    frame = long_frame.head(1_000).drop(columns=LABEL)
    ids = np.random.default_rng(0).permutation([f"tx-{i:05d}" for i in range(1_000)])
    frame.insert(0, "transaction_id", ids)
    path = tmp_path / "batch.parquet"
    frame.to_parquet(path, index=False)
    chunks = list(iter_feature_chunks(str(path), chunk_rows=300))
    assert len(chunks) == 4
    assert [i for c in chunks for i in c.ids.to_pylist()] == ids.tolist()
    features = np.concatenate([c.features for c in chunks])
    assert features.dtype == np.float32
    np.testing.assert_array_equal(
        features, frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32)
    )


def test_without_id_column_row_numbers_continue_across_chunks(tmp_path, long_frame):
    path = tmp_path / "batch.parquet"
    long_frame.head(1_000).to_parquet(path, index=False)
    chunks = list(iter_feature_chunks(str(path), chunk_rows=300))
    assert [len(c.ids) for c in chunks] == [300, 300, 300, 100]
    np.testing.assert_array_equal(np.concatenate([c.ids.to_numpy() for c in chunks]),
                                  np.arange(1_000))


def test_csv_ids_are_text_and_may_change_shape_after_the_first_block(tmp_path, long_frame):
    # The streaming CSV reader infers types from its first block: ids numeric there and
    # alphanumeric later made a valid file "unreadable"; leading zeros were dropped.
    frame = long_frame.drop(columns=LABEL)
    ids = [f"{i:06d}" for i in range(5_000)] + [f"B-{i}" for i in range(len(frame) - 5_000)]
    frame.insert(0, "transaction_id", ids)
    frame["note"] = ""
    frame.loc[5_800, "note"] = "checked by phone"
    path = write_ulb_csv(frame, tmp_path / "batch.csv")
    chunks = list(iter_feature_chunks(str(path), chunk_rows=1_000))
    assert len(chunks) > 1
    assert [i for c in chunks for i in c.ids.to_pylist()] == ids


# --- write_table ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_write_table_round_trips(tmp_path, small_frame, name):
    path = tmp_path / "sub" / name
    write_table(small_frame, str(path))
    assert _files(path.parent) == [name]
    pd.testing.assert_frame_equal(read_transactions(str(path)), small_frame, check_dtype=False)


def test_write_table_writes_mixed_text_and_numbers_as_they_are(tmp_path, small_frame):
    """Arrow cannot type a column of numbers with one text cell; the CSV still gets it, so
    that reading it back reports the bad cell instead of the writer failing."""
    frame = small_frame.copy()
    frame["V4"] = frame["V4"].astype(object)
    frame.loc[7, "V4"] = "oops"
    path = tmp_path / "mixed.csv"
    write_table(frame, str(path))
    assert pd.read_csv(path, dtype={"V4": str})["V4"][7] == "oops"
    with pytest.raises(DataValidationError, match="column 'V4': 1 row"):
        read_transactions(str(path))


def _fail_after_first_rows(monkeypatch, error: Exception):
    """An ``on_rows`` that fails once the first few rows have reached the temporary file."""
    monkeypatch.setattr(tables, "WRITE_ROWS", 3)
    monkeypatch.setattr(tables, "PARQUET_ROW_GROUP_ROWS", 3)

    def on_rows(rows: int) -> None:
        raise error

    return on_rows


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_write_table_failure_leaves_no_target_and_no_temporary(
    tmp_path, small_frame, monkeypatch, name
):
    on_rows = _fail_after_first_rows(monkeypatch, OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        write_table(small_frame, str(tmp_path / name), on_rows=on_rows)
    assert _files(tmp_path) == []


def test_write_table_failure_keeps_the_previous_file(tmp_path, small_frame, monkeypatch):
    path = tmp_path / "out.csv"
    write_table(small_frame, str(path))
    before = path.read_bytes()

    on_rows = _fail_after_first_rows(monkeypatch, RuntimeError("killed"))
    with pytest.raises(RuntimeError):
        write_table(small_frame.head(10), str(path), on_rows=on_rows)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("name", ["out.xlsx", "out.csv.gz"])
def test_write_table_refuses_unknown_extension_before_writing(tmp_path, small_frame, name):
    with pytest.raises(ValueError, match="unsupported file type"):
        write_table(small_frame, str(tmp_path / name))
    assert _files(tmp_path) == []
    assert tables.is_table_file("day.parquet") and not tables.is_table_file(".day.csv.tmp-1.csv")


def test_corrupt_parquet_page_is_a_validation_error_naming_the_file(tmp_path, long_frame):
    """Arrow reports a damaged page as a plain OSError; it must not escape as one (the file
    would then be retried instead of quarantined)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "damaged.parquet"
    pq.write_table(pa.Table.from_pandas(long_frame, preserve_index=False), path, row_group_size=1_000)
    column = pq.ParquetFile(path).metadata.row_group(2).column(5)
    data = bytearray(path.read_bytes())
    start = column.data_page_offset + 40
    data[start : start + column.total_compressed_size - 50] = b"\xab" * (column.total_compressed_size - 50)
    path.write_bytes(bytes(data))

    for read in (
        lambda: list(iter_feature_chunks(str(path), chunk_rows=1_000)),
        lambda: read_transactions(str(path), require_label=False),
    ):
        with pytest.raises(DataValidationError, match=r"damaged\.parquet: unreadable file"):
            read()


def test_invalid_utf8_in_a_text_column_is_a_validation_error_naming_the_file(tmp_path, small_frame):
    frame = small_frame.copy()
    frame["note"] = "ok"
    path = tmp_path / "latin1.csv"
    frame.to_csv(path, index=False)
    lines = path.read_bytes().split(b"\n")
    lines[3] += b"\xe9t\xe9"  # "été" in Latin-1 in the last (text) column
    path.write_bytes(b"\n".join(lines))

    for read in (
        lambda: list(iter_feature_chunks(str(path))),
        lambda: read_transactions(str(path)),
    ):
        # The column and the data row, not a byte offset into some buffer.
        with pytest.raises(DataValidationError,
                           match=r"latin1\.csv: column 'note': byte 0xe9 is not UTF-8 .*data row 3\)"):
            read()


def test_gzip_csv_is_refused_by_name_not_misread():
    with pytest.raises(ValueError, match="unsupported file type"):
        tables.table_format("day.csv.gz")
    assert not tables.is_table_file("day.csv.gz")
