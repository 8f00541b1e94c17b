"""The pandas-free scoring path: the same matrices, chunks, errors and predictions as the pandas
route it replaces, and a read-ahead thread that neither reorders, swallows nor leaks."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from fraud_assets.core.data import tables
from fraud_assets.core.data.feature_chunks import iter_feature_chunks
from fraud_assets.core.data.read_ahead import read_ahead
from fraud_assets.core.data.schema import FEATURE_COLUMNS, DataValidationError
from fraud_assets.core.model.scoring import predict_chunk, score_file
from fraud_assets_tests.ulb_files import replace_cell, write_ulb_csv


def _pandas_features(frame: pd.DataFrame) -> np.ndarray:
    """The conversion scoring used before: DataFrame -> float32 matrix."""
    return frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32)


def _features(path, **kwargs) -> np.ndarray:
    return np.concatenate([c.features for c in iter_feature_chunks(str(path), **kwargs)])


# --- the same matrix as the pandas route ----------------------------------------------------


def test_csv_features_equal_the_pandas_conversion(tmp_path, batch_frame):
    path = write_ulb_csv(batch_frame, tmp_path / "batch.csv")
    expected = _pandas_features(pd.read_csv(path))
    np.testing.assert_array_equal(_features(path, chunk_rows=1_000), expected)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_mixed_numeric_types_equal_the_pandas_conversion(tmp_path, batch_frame):
    frame = batch_frame.copy()
    frame["Time"] = frame["Time"].astype(np.int64)  # integers, as the real file's Time
    frame["V3"] = frame["V3"].astype(np.float32)
    frame.loc[10, "V5"] = 1e29  # large, but inside what the float32 model can take
    path = tmp_path / "mixed.parquet"
    frame.to_parquet(path, index=False)
    np.testing.assert_array_equal(_features(path), _pandas_features(frame))


def test_numeric_text_columns_take_the_pandas_route_and_convert_alike(tmp_path, batch_frame):
    frame = batch_frame.head(500).copy()
    frame["V7"] = frame["V7"].map(repr)  # a careless export: numbers stored as text
    path = tmp_path / "text.parquet"
    frame.to_parquet(path, index=False)
    np.testing.assert_array_equal(_features(path, chunk_rows=200), _pandas_features(frame))


# --- chunks and errors ----------------------------------------------------------------------


def test_csv_chunks_hold_exactly_chunk_rows(tmp_path, batch_frame):
    path = write_ulb_csv(batch_frame, tmp_path / "batch.csv")
    sizes = [len(c) for c in iter_feature_chunks(str(path), chunk_rows=1_200)]
    assert sizes == [1_200, 1_200, 1_200, 1_200, 200]


def test_bad_rows_in_different_slabs_of_one_chunk_are_all_counted(tmp_path, batch_frame,
                                                                   monkeypatch):
    # A chunk is converted a slab at a time; the count must still cover the whole chunk.
    monkeypatch.setattr(tables, "SLAB_ROWS", 256)
    monkeypatch.setattr(tables, "CSV_BLOCK_BYTES", 1 << 16)
    path = write_ulb_csv(batch_frame, tmp_path / "batch.csv")
    replace_cell(path, [2_100, 2_900, 3_100], "Amount", "-1")
    # Rows 2,001-3,000 form the third chunk; rows 2,100 and 2,900 lie in different slabs.
    with pytest.raises(DataValidationError,
                       match=r"column 'Amount': 2 row\(s\) negative \(first at data row 2100\)"):
        list(iter_feature_chunks(str(path), chunk_rows=1_000))
    with pytest.raises(DataValidationError,
                       match=r"column 'Amount': 3 row\(s\) negative \(first at data row 2100\)"):
        list(iter_feature_chunks(str(path), chunk_rows=5_000))


# --- predictions ----------------------------------------------------------------------------


def test_predicting_a_slice_at_a_time_changes_no_value(trained_model, batch_frame, monkeypatch):
    from fraud_assets.core.model import scoring

    monkeypatch.setattr(scoring, "PREDICT_ROWS", 333)
    raw = _pandas_features(batch_frame)
    np.testing.assert_array_equal(predict_chunk(trained_model, raw),
                                  trained_model.predict_proba(raw))


def test_score_file_output_is_the_same_for_any_chunk_size(trained_model, batch_frame, tmp_path):
    path = write_ulb_csv(batch_frame, tmp_path / "batch.csv")
    for rows in (1_000, 4_999, 262_144):
        score_file(trained_model, str(path), str(tmp_path / f"out-{rows}.csv"), chunk_rows=rows)
    first = (tmp_path / "out-1000.csv").read_bytes()
    assert (tmp_path / "out-4999.csv").read_bytes() == first
    assert (tmp_path / "out-262144.csv").read_bytes() == first


# --- read-ahead -------------------------------------------------------------------------------


def test_read_ahead_keeps_order_and_raises_after_the_items_before_the_error():
    def items():
        yield from range(5)
        raise DataValidationError("f.csv", ["boom"])

    seen = []
    with pytest.raises(DataValidationError, match="boom"):
        for item in read_ahead(items()):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_read_ahead_stops_and_closes_the_producer_when_the_consumer_stops():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for number in range(1_000):
                produced.append(number)
                yield number
        finally:
            closed.set()

    for item in read_ahead(items(), depth=1):
        if item == 2:
            break
    assert closed.wait(5)
    assert len(produced) <= 4  # the held item, at most one ahead, and the one being made
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())


def _read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "read-ahead" and t.is_alive()]


def test_a_failure_while_scoring_stops_the_reader_and_releases_the_file(
    tmp_path, batch_frame, trained_model
):
    """The caller may quarantine the file next; no thread may still be reading it."""
    path = write_ulb_csv(batch_frame, tmp_path / "batch.csv")

    def fail_on_second_chunk(chunk, probabilities, calls=[]):  # noqa: B006 - a call counter
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("downstream failure")

    with pytest.raises(RuntimeError, match="downstream failure") as failure:
        score_file(trained_model, str(path), str(tmp_path / "out.csv"), chunk_rows=1_000,
                   on_chunk=fail_on_second_chunk)
    assert failure.value.__traceback__ is not None  # the frames are still referenced here
    assert _read_ahead_threads() == []


def test_a_bad_row_stops_the_reader_and_releases_the_file(tmp_path, batch_frame):
    path = write_ulb_csv(batch_frame, tmp_path / "batch.csv")
    replace_cell(path, [len(batch_frame) - 5], "V4", "oops")
    chunks = iter_feature_chunks(str(path), chunk_rows=1_000)
    with pytest.raises(DataValidationError, match="'V4'"):
        for _ in chunks:
            pass
    assert _read_ahead_threads() == []
