"""The hostile corpus through every command that reads transactions.

Refused files: exit 2, a message naming the file (and column and row where a row is at
fault), no traceback, nothing written. Valid tricky files: read unchanged.
"""

from __future__ import annotations

import functools
import os
import re

import pytest

from fraud_assets.core.model.training import TrainingConfig
from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.hostile_files import corpus, csv_bytes

from .test_cli import fraud

CASES = {case.name: case for case in corpus()}
REFUSED = [name for name, case in CASES.items() if case.refused]
VALID = [name for name, case in CASES.items() if not case.refused]


@pytest.fixture(autouse=True)
def fast_training(monkeypatch):
    monkeypatch.setattr("fraud_assets.core.model.training.TrainingConfig",
                        functools.partial(TrainingConfig, n_estimators=30, early_stopping_rounds=10))


@pytest.fixture(scope="module")
def base_frame():
    return generate_transactions(3_000, seed=5, fraud_rate=0.03)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, base_frame):
    folder = tmp_path_factory.mktemp("hostile")
    for case in corpus():
        (folder / case.name).write_bytes(case.build(base_frame))
    (folder / "reference.csv").write_bytes(csv_bytes(base_frame))
    return folder


def _assert_refused(code, err, case, path):
    assert code == 2, err
    assert "Traceback" not in err
    assert str(path) in err
    assert re.search(case.expect, err), err
    if case.names_row:
        assert re.search(r"column '[^']+'.*data row \d+", err), err


def _nothing_written(folder) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.mark.parametrize("name", REFUSED)
def test_score_refuses_with_file_column_row_and_writes_nothing(capsys, tmp_path, corpus_dir,
                                                               model_dir, name):
    path, out = corpus_dir / name, tmp_path / "out"
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", path,
                         "--output", out / "predictions.parquet")
    _assert_refused(code, err, CASES[name], path)
    assert _nothing_written(out) == []


@pytest.mark.parametrize("name", REFUSED)
def test_drift_refuses_alike(capsys, tmp_path, corpus_dir, name):
    path = corpus_dir / name
    code, _, err = fraud(capsys, "drift", "--reference", corpus_dir / "reference.csv",
                         "--current", path, "--output", tmp_path / "report.json")
    _assert_refused(code, err, CASES[name], path)
    assert _nothing_written(tmp_path) == []


@pytest.mark.parametrize("name", REFUSED)
def test_train_refuses_alike(capsys, tmp_path, corpus_dir, name):
    path, out = corpus_dir / name, tmp_path / "model"
    code, _, err = fraud(capsys, "train", "--data", path, "--output-dir", out)
    _assert_refused(code, err, CASES[name], path)
    assert _nothing_written(out) == []


@pytest.mark.parametrize("name", REFUSED)
def test_s3_upload_refuses_before_touching_s3(capsys, monkeypatch, corpus_dir, name):
    # Nothing listens here: a refused file must never get as far as an upload.
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    path = corpus_dir / name
    code, _, err = fraud(capsys, "s3", "upload", path)
    _assert_refused(code, err, CASES[name], path)


def test_a_rerun_of_score_removes_what_a_killed_run_left(capsys, tmp_path, corpus_dir, model_dir):
    out = tmp_path / "out"
    out.mkdir()
    debris = [out / ".predictions.parquet.tmp-0123456789ab", out / ".inference_stats.json.tmp-ba9876543210"]
    for path in debris:  # what SIGKILL leaves between the write and the rename
        path.write_bytes(b"partial")
        os.utime(path, (1_000_000_000, 1_000_000_000))
    other = out / ".elsewhere.parquet.tmp-0123456789ab"  # another output's: not ours to remove
    other.write_bytes(b"")
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", corpus_dir / "reference.csv",
                         "--output", out / "predictions.parquet")
    assert code == 0, err
    assert _nothing_written(out) == sorted([other.name, "inference_stats.json", "predictions.parquet"])


@pytest.mark.parametrize("key", [None, "raw/other.csv", "incoming/2025-03-04_batch"])
def test_s3_upload_refuses_a_key_whose_extension_is_another_format(capsys, monkeypatch, tmp_path,
                                                                   base_frame, key):
    # A labelled Parquet file went to raw/creditcard.csv and broke the next training run.
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    path = tmp_path / "labelled.parquet"
    base_frame.to_parquet(path, index=False)
    code, _, err = fraud(capsys, "s3", "upload", path, *(["--key", key] if key else []))
    assert code == 2, err
    assert "Traceback" not in err
    assert re.search(r"a Parquet file cannot be stored as \S+, which readers take by its extension", err), err


@pytest.mark.parametrize("name", VALID)
@pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow in a check is a check gone wrong
def test_valid_tricky_files_score_and_drift(capsys, tmp_path, corpus_dir, model_dir, base_frame, name):
    path = corpus_dir / name
    code, out, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", path,
                           "--output", tmp_path / "predictions.parquet")
    assert code == 0, err
    assert f'"rows": {len(base_frame)}' in out
    code, _, err = fraud(capsys, "drift", "--reference", corpus_dir / "reference.csv",
                         "--current", path, "--output", tmp_path / "report.json")
    assert code == 0, err
    assert "Traceback" not in err and "RuntimeWarning" not in err


@pytest.mark.parametrize(
    ("rows", "fraud_rate"),
    [(3_000, 0.0), (300, 0.004)],  # one class; a few hundred rows with a fraud or so
    ids=["one-class", "few-rows"],
)
def test_train_without_enough_frauds_says_what_each_split_needs_and_has(capsys, tmp_path, rows,
                                                                        fraud_rate):
    frame = generate_transactions(rows, seed=2, fraud_rate=fraud_rate)
    path = tmp_path / "small.csv"
    path.write_bytes(csv_bytes(frame))
    code, _, err = fraud(capsys, "train", "--data", path, "--output-dir", tmp_path / "model")
    assert code == 2, err
    assert "Traceback" not in err
    assert re.search(r"too few frauds.*needs at least 1 fraud.*train has \d+ of \d+ rows, "
                     r"validation has \d+ of \d+ rows, test has \d+ of \d+ rows", err), err
    assert not (tmp_path / "model").exists()
