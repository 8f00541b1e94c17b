"""Label files: every bad case refused with file, column and row; merging applies nothing twice."""

import gzip
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from fraud_assets.core.data.labels import (
    BATCH_FILE,
    LABEL_COLUMNS,
    TRANSACTION_ID,
    KnownTransactions,
    batch_rows,
    check_known,
    merge_labels,
    read_label_file,
    report_date,
    with_labels,
)
from fraud_assets.core.data.schema import FEATURE_COLUMNS, DataValidationError
from fraud_assets.core.storage.failures import StorageError
from fraud_assets.core.storage.locations import Location

FS = Location("/").fs
GOOD = "transaction_id,transaction_date,Class\n17,2025-03-01,1\n0042,2025-03-02,0\n"


def write(tmp_path, text: str, name: str = "2025-03-05_reported.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_reads_a_good_file(tmp_path):
    labels = read_label_file(write(tmp_path, GOOD), fs=FS)
    assert labels[TRANSACTION_ID].tolist() == ["17", "0042"]  # leading zeros kept
    assert labels["Class"].tolist() == [1, 0]
    assert set(labels["reported_on"]) == {"2025-03-05"}
    assert set(labels[BATCH_FILE]) == {""}


def test_class_defaults_to_fraud_and_batch_file_is_reduced_to_its_stem(tmp_path):
    text = 'transaction_id,transaction_date,batch_file\n3,2025-03-01,"incoming/2025-03-01_a.csv"\n'
    labels = read_label_file(write(tmp_path, text), fs=FS)
    assert labels["Class"].tolist() == [1]
    assert labels[BATCH_FILE].tolist() == ["2025-03-01_a"]


def test_quoted_header_and_values_as_in_the_ulb_file(tmp_path):
    text = '"transaction_id","transaction_date","Class"\n"5","2025-03-01","1"\n'
    assert read_label_file(write(tmp_path, text), fs=FS)["Class"].tolist() == [1]


@pytest.mark.parametrize(
    ("text", "column", "what"),
    [
        ("transaction_id,Class\n1,1\n", "transaction_date", "missing column"),
        ("transaction_id,transaction_date,Class\n1,2025-02-30,1\n", "transaction_date", "not a date"),
        ("transaction_id,transaction_date,Class\n1,03/01/2025,1\n", "transaction_date", "not a date"),
        ("transaction_id,transaction_date,Class\n1,2025-03-09,1\n", "transaction_date", "after the report date"),
        ("transaction_id,transaction_date,Class\n1,2025-03-01,2\n", "Class", "not 0 or 1"),
        ("transaction_id,transaction_date,Class\n1,2025-03-01,fraud\n", "Class", "not 0 or 1"),
        ("transaction_id,transaction_date,Class\n1,2025-03-01,\n", "Class", "not 0 or 1"),
        ("transaction_id,transaction_date,Class\n,2025-03-01,1\n", "transaction_id", "empty"),
        ("transaction_id,transaction_date,Class\n1,2025-03-01,1\n1,2025-03-01,0\n", "transaction_id",
         "already labelled"),
        ("transaction_id,transaction_date,transaction_id\n1,2025-03-01,2\n", "transaction_id", "duplicate column"),
    ],
)
def test_bad_files_name_file_column_and_row(tmp_path, text, column, what):
    path = write(tmp_path, text)
    with pytest.raises(DataValidationError) as error:
        read_label_file(path, fs=FS, source="labels/2025-03-05_reported.csv")
    message = str(error.value)
    assert message.startswith("labels/2025-03-05_reported.csv: ")
    assert column in message and what in message
    if "data row" in message:
        assert "data row 1" in message or "data row 2" in message


@pytest.mark.parametrize(
    ("contents", "what"),
    [
        (gzip.compress(GOOD.encode()), "gzip-compressed"),
        (GOOD.replace(",", ";").encode(), "wrong delimiter"),
        (GOOD.replace("\n", "\r").encode(), "CR only"),
        (GOOD.encode("utf-16"), "UTF-16"),
        ("transaction_id,transaction_date,batch_file\n1,2025-03-01,a.csv\n2,2025-03-01,caf\xe9.csv\n"
         .encode("latin-1"), "column 'batch_file': byte 0xe9 is not UTF-8 text (first at data row 2)"),
        (GOOD.encode() + b"18,2025-03-01\n", "1 row(s) with the wrong number of fields, expected 3 (first at data row 3)"),
        (GOOD.encode() + b"18,2025-03-01,1,1\n", "wrong number of fields, expected 3 (first at data row 3)"),
        (b'transaction_id,transaction_date\n"1,2025-03-01\n', "wrong number of fields"),
        (b"", "empty file"),
        # Otherwise an unknown column, and every row labelled fraud by default.
        (GOOD.replace("Class", "class").encode(), "column 'class' should be named 'Class'"),
        (GOOD.replace("transaction_date", "Transaction_Date").encode(),
         "column 'Transaction_Date' should be named 'transaction_date'"),
    ],
)
def test_label_csv_files_meet_the_batch_files_rules(tmp_path, contents, what):
    path = tmp_path / "2025-03-05_reported.csv"
    path.write_bytes(contents)
    with pytest.raises(DataValidationError) as error:
        read_label_file(str(path), fs=FS)
    assert what in str(error.value)


def test_spaces_a_byte_order_mark_and_a_header_without_rows_are_accepted(tmp_path):
    spaced = "\ufefftransaction_id, transaction_date, Class\n17, 2025-03-01, 1\n"
    labels = read_label_file(write(tmp_path, spaced), fs=FS)
    assert labels[[TRANSACTION_ID, "transaction_date", "Class"]].values.tolist() == [["17", "2025-03-01", 1]]
    assert read_label_file(write(tmp_path, "transaction_id,transaction_date\n", "2025-03-06.csv"), fs=FS).empty


@pytest.mark.parametrize(
    ("columns", "what"),
    [
        ({"transaction_id": [[1, 2]], "transaction_date": ["2025-03-01"]}, "'transaction_id': Parquet type list"),
        ({"transaction_id": ["1"], "transaction_date": [b"\xff\x00"]}, "'transaction_date': Parquet type binary"),
        ({"transaction_id": ["1"], "transaction_date": [20250301]}, "not a date"),
        ({"transaction_id": ["1", "1"], "transaction_date": ["2025-03-01"] * 2}, "already labelled"),
    ],
)
def test_parquet_label_files_of_the_wrong_types_are_refused(tmp_path, columns, what):
    path = tmp_path / "2025-03-05.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(DataValidationError, match=re.escape(what)):
        read_label_file(str(path), fs=FS)


def test_a_parquet_file_named_csv_or_cut_short_is_refused(tmp_path):
    whole = tmp_path / "2025-03-05.parquet"
    pd.DataFrame({"transaction_id": ["1"], "transaction_date": ["2025-03-01"]}).to_parquet(whole)
    named_csv = tmp_path / "2025-03-05.csv"
    named_csv.write_bytes(whole.read_bytes())
    with pytest.raises(DataValidationError, match="Parquet file: name it .parquet"):
        read_label_file(str(named_csv), fs=FS)
    whole.write_bytes(whole.read_bytes()[:-30])
    with pytest.raises(DataValidationError, match="unreadable file"):
        read_label_file(str(whole), fs=FS)


def test_a_storage_failure_is_not_a_bad_file(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)

    def failing_open(self, path, mode="rb", **kwargs):
        raise ConnectionResetError("Connection reset by peer")

    monkeypatch.setattr(LocalFileSystem, "_open", failing_open)
    with pytest.raises(StorageError):
        read_label_file(path, fs=FS)


def test_parquet_booleans_are_not_labels(tmp_path):
    path = tmp_path / "2025-03-05.parquet"
    pd.DataFrame({"transaction_id": ["1"], "transaction_date": ["2025-03-01"], "Class": [True]}).to_parquet(path)
    with pytest.raises(DataValidationError, match="booleans"):
        read_label_file(str(path), fs=FS)


def test_a_file_without_a_report_date_in_its_name_is_refused(tmp_path):
    with pytest.raises(DataValidationError, match="report date"):
        read_label_file(write(tmp_path, GOOD, name="labels.csv"), fs=FS)
    assert report_date("2025-02-30.csv") is None
    assert report_date("2025-03-05-late.parquet") == "2025-03-05"


def test_unknown_and_ambiguous_transactions_are_named(tmp_path):
    known = KnownTransactions({"2025-03-01_a": {"0", "1", "2"}, "2025-03-01_b": {"0", "1"}})
    text = ("transaction_id,transaction_date,batch_file\n2,2025-03-01,\n9,2025-03-01,\n"
            "1,2025-03-01,\n1,2025-03-01,2025-03-01_b.csv\n")
    labels = read_label_file(write(tmp_path, text), fs=FS)
    with pytest.raises(DataValidationError) as error:
        check_known(labels, known, "labels/x.csv", "2025-03-01")
    message = str(error.value)
    assert "1 label(s) for 2025-03-01 name no scored transaction (first at data row 2: '9')" in message
    assert "batch_file" in message and "first at data row 3" in message
    good = labels.iloc[[0, 3]]
    check_known(good, known, "labels/x.csv", "2025-03-01")
    assert known.resolve(good)[BATCH_FILE].tolist() == ["2025-03-01_a", "2025-03-01_b"]


def test_merge_keeps_the_latest_report_and_applies_nothing_twice(tmp_path):
    first = read_label_file(write(tmp_path, GOOD, "2025-03-05.csv"), fs=FS)
    correction = read_label_file(
        write(tmp_path, "transaction_id,transaction_date,Class\n17,2025-03-01,0\n", "2025-03-09.csv"), fs=FS
    )
    merged = merge_labels([first, correction])
    assert list(merged.columns) == list(LABEL_COLUMNS)
    assert dict(zip(merged[TRANSACTION_ID], merged["Class"], strict=True)) == {"17": 0, "0042": 0}
    again = merge_labels([first, correction, first, correction])
    pd.testing.assert_frame_equal(again, merged)
    assert len(merge_labels([])) == 0


def test_rows_read_in_chunks_are_named_by_their_row_in_the_file_as_labels_name_them():
    frame = pd.DataFrame({name: [0.0] * 6 for name in FEATURE_COLUMNS})
    labels = pd.DataFrame({"batch_file": ["2025-03-04_a"] * 2, "transaction_id": ["1", "4"], "Class": [1, 1]})
    whole = batch_rows(frame, "processed/2025-03-04/2025-03-04_a.csv")
    chunked = pd.concat([batch_rows(frame.iloc[:3], "2025-03-04_a.csv"),
                         batch_rows(frame.iloc[3:], "2025-03-04_a.csv", first_row=3)], ignore_index=True)
    assert whole["transaction_id"].tolist() == chunked["transaction_id"].tolist() == list("012345")
    assert with_labels(chunked, labels).tolist() == [0, 1, 0, 0, 1, 0]
    # A file with its own ids is named by them, wherever the chunk starts.
    with_ids = frame.assign(transaction_id=[f"T{i}" for i in range(6)])
    assert batch_rows(with_ids.iloc[3:], "2025-03-04_a.csv", first_row=3)["transaction_id"].tolist() == ["T3", "T4", "T5"]
