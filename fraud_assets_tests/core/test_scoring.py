"""Batch scoring: one prediction per input row, in order, identical across formats and chunk
sizes, and nothing left behind when the input turns out bad half-way."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fraud_assets.core.data.schema import FEATURE_COLUMNS, DataValidationError
from fraud_assets.core.model.scoring import PREDICTION_COLUMNS, score_file
from fraud_assets_tests.ulb_files import replace_cell, write_ulb_csv


def _read(path) -> pd.DataFrame:
    path = str(path)
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"transaction_id": str})


@pytest.fixture(scope="module")
def batch_with_ids(batch_frame) -> pd.DataFrame:
    frame = batch_frame.copy()
    ids = np.random.default_rng(9).permutation(len(frame))
    frame.insert(0, "transaction_id", [f"T{i:07d}" for i in ids])  # not in sorted order
    return frame


@pytest.fixture(scope="module")
def batch_csv(batch_with_ids, tmp_path_factory):
    return write_ulb_csv(batch_with_ids, tmp_path_factory.mktemp("in") / "batch.csv")


@pytest.fixture(scope="module")
def batch_parquet(batch_with_ids, tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "batch.parquet"
    batch_with_ids.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("output_name", ["out.csv", "out.parquet"])
def test_one_prediction_per_row_in_input_order(trained_model, batch_with_ids, batch_csv, tmp_path,
                                               output_name):
    output = tmp_path / output_name
    stats = score_file(trained_model, str(batch_csv), str(output))
    predictions = _read(output)
    assert list(predictions.columns) == list(PREDICTION_COLUMNS)
    assert len(predictions) == len(batch_with_ids) == stats.rows
    assert predictions["transaction_id"].tolist() == batch_with_ids["transaction_id"].tolist()
    assert set(predictions["model_version"]) == {trained_model.version}

    expected = trained_model.predict_proba(
        batch_with_ids.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32)
    )
    np.testing.assert_array_equal(predictions["fraud_probability"].to_numpy(np.float32), expected)
    flagged = expected >= trained_model.threshold
    assert predictions["is_fraud"].astype(bool).tolist() == flagged.tolist()
    assert stats.flagged == int(flagged.sum()) > 0
    assert stats.flagged_rate == pytest.approx(flagged.mean())
    assert stats.model_version == trained_model.version
    assert os.listdir(tmp_path) == [output_name]


def test_csv_and_parquet_outputs_are_equal(trained_model, batch_parquet, tmp_path):
    score_file(trained_model, str(batch_parquet), str(tmp_path / "out.csv"))
    score_file(trained_model, str(batch_parquet), str(tmp_path / "out.parquet"))
    csv = _read(tmp_path / "out.csv")
    parquet = _read(tmp_path / "out.parquet")
    assert csv["transaction_id"].tolist() == parquet["transaction_id"].tolist()
    np.testing.assert_array_equal(csv["fraud_probability"].to_numpy(np.float32),
                                  parquet["fraud_probability"].to_numpy(np.float32))
    assert csv["is_fraud"].astype(bool).tolist() == parquet["is_fraud"].tolist()
    assert csv["model_version"].tolist() == parquet["model_version"].astype(str).tolist()
    metadata = pq.read_schema(tmp_path / "out.parquet").metadata
    assert metadata[b"model_version"].decode() == trained_model.version


def test_rows_without_ids_are_numbered_from_zero(trained_model, batch_frame, tmp_path):
    source = tmp_path / "batch.parquet"
    batch_frame.to_parquet(source, index=False)
    score_file(trained_model, str(source), str(tmp_path / "out.parquet"), chunk_rows=1_500)
    predictions = _read(tmp_path / "out.parquet")
    np.testing.assert_array_equal(predictions["transaction_id"], np.arange(len(batch_frame)))


@pytest.mark.parametrize("source_name", ["batch_csv", "batch_parquet"])
def test_chunked_equals_unchunked(trained_model, request, tmp_path, source_name):
    source = request.getfixturevalue(source_name)
    whole_chunks: list[int] = []
    small_chunks: list[int] = []
    score_file(trained_model, str(source), str(tmp_path / "whole.parquet"),
               on_chunk=lambda chunk, p: whole_chunks.append(len(p)))
    score_file(trained_model, str(source), str(tmp_path / "small.parquet"), chunk_rows=700,
               on_chunk=lambda chunk, p: small_chunks.append(len(p)))
    assert len(whole_chunks) == 1
    assert len(small_chunks) > 1 and sum(small_chunks) == sum(whole_chunks)
    pd.testing.assert_frame_equal(_read(tmp_path / "whole.parquet"), _read(tmp_path / "small.parquet"))


@pytest.mark.parametrize("output_name", ["out.csv", "out.parquet"])
def test_bad_row_in_later_chunk_leaves_no_output(trained_model, batch_with_ids, tmp_path,
                                                 output_name):
    source = tmp_path / "in" / "batch.parquet"
    source.parent.mkdir()
    bad = batch_with_ids.copy()
    bad.loc[4_321, "Amount"] = -12.0
    bad.to_parquet(source, index=False)
    out_dir = tmp_path / "out"
    chunks_scored = []
    with pytest.raises(DataValidationError,
                       match=r"column 'Amount': 1 row\(s\) negative \(first at data row 4322\)"):
        score_file(trained_model, str(source), str(out_dir / output_name), chunk_rows=1_000,
                   on_chunk=lambda chunk, p: chunks_scored.append(len(p)))
    assert chunks_scored == [1_000] * 4  # predictions were written before the bad chunk ...
    assert os.listdir(out_dir) == []  # ... yet neither the output nor a temporary remains


def test_bad_input_keeps_the_previous_output_intact(trained_model, batch_with_ids, tmp_path):
    good = write_ulb_csv(batch_with_ids, tmp_path / "good.csv")
    output = tmp_path / "predictions.csv"
    score_file(trained_model, str(good), str(output))
    before = output.read_bytes()

    bad = write_ulb_csv(batch_with_ids, tmp_path / "bad.csv")
    replace_cell(bad, [4_999], "V2", "n.a.")
    with pytest.raises(DataValidationError, match=r"bad.csv: column 'V2': 1 row\(s\) not numeric"):
        score_file(trained_model, str(bad), str(output), chunk_rows=1_000)
    assert output.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["bad.csv", "good.csv", "predictions.csv"]


def test_source_name_in_errors_and_metadata(trained_model, batch_parquet, tmp_path):
    score_file(trained_model, str(batch_parquet), str(tmp_path / "out.parquet"),
               source="s3://bucket/incoming/batch.parquet")
    metadata = pq.read_schema(tmp_path / "out.parquet").metadata
    assert metadata[b"source_file"] == b"s3://bucket/incoming/batch.parquet"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match=r"^s3://bucket/incoming/empty.csv: empty file"):
        score_file(trained_model, str(empty), str(tmp_path / "never.csv"),
                   source="s3://bucket/incoming/empty.csv")
    assert not (tmp_path / "never.csv").exists()
