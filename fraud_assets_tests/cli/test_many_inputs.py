"""``fraud train --data`` and ``fraud score --input`` name a file, a folder or a glob."""

from __future__ import annotations

import functools
import json

import pandas as pd
import pytest

from fraud_assets.cli.main import main
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.training import TrainingConfig
from fraud_assets_tests.cli.test_cli import LOCAL, fraud
from fraud_assets_tests.ulb_files import write_ulb_csv


@pytest.fixture(autouse=True)
def single_process(monkeypatch):
    monkeypatch.delenv("FRAUD_DASK_SCHEDULER", raising=False)
    monkeypatch.setattr("fraud_assets.core.model.training.TrainingConfig",
                        functools.partial(TrainingConfig, n_estimators=40, early_stopping_rounds=15))


@pytest.fixture
def three_parts(tmp_path, labelled_frame):
    """The labelled rows cut into three files, CSV and Parquet mixed, plus the whole file."""
    rows = labelled_frame.head(20_000)
    folder = tmp_path / "parts"
    folder.mkdir()
    write_ulb_csv(rows.iloc[:7000], folder / "a.csv")
    rows.iloc[7000:14_000].reset_index(drop=True).to_parquet(folder / "b.parquet")
    write_ulb_csv(rows.iloc[14_000:], folder / "c.csv")
    (folder / "notes.txt").write_text("not a table")
    (folder / ".c.csv.tmp-0123456789ab").write_text("a killed writer's leftover")
    whole = write_ulb_csv(rows, tmp_path / "whole.csv")
    return folder, whole


def _booster(directory) -> bytes:
    return FraudModel.load(LOCAL, str(directory)).booster_bytes


@pytest.mark.parametrize("spelling", ["{folder}", "{folder}/*", "{folder}/[abc].*"])
def test_training_on_a_folder_or_glob_equals_training_on_the_whole_file(capsys, tmp_path, three_parts,
                                                                          spelling):
    folder, whole = three_parts
    code, _, err = fraud(capsys, "train", "--data", spelling.format(folder=folder), "--output-dir",
                         tmp_path / "from-parts")
    assert code == 0, err
    code, _, err = fraud(capsys, "train", "--data", whole, "--output-dir", tmp_path / "from-whole")
    assert code == 0, err
    assert _booster(tmp_path / "from-parts") == _booster(tmp_path / "from-whole")


def test_a_bad_file_among_many_is_named_with_its_row_and_column(capsys, tmp_path, three_parts):
    folder, _ = three_parts
    frame = pd.read_csv(folder / "c.csv", dtype=str)
    frame.loc[41, "V3"] = "oops"
    frame.to_csv(folder / "c.csv", index=False)
    code, _, err = fraud(capsys, "train", "--data", folder, "--output-dir", tmp_path / "m")
    assert code == 2
    assert "c.csv" in err and "'V3'" in err and "data row 42" in err


@pytest.mark.parametrize("spelling", ["{tmp}/empty", "{tmp}/nothing-*.csv", "{tmp}/absent"])
def test_a_folder_or_glob_with_no_table_is_a_usage_error(capsys, tmp_path, spelling):
    (tmp_path / "empty").mkdir()
    code, _, err = fraud(capsys, "train", "--data", spelling.format(tmp=tmp_path), "--output-dir",
                         tmp_path / "m")
    assert code == 2 and "--data" in err and "Traceback" not in err


@pytest.fixture
def model_dir(tmp_path_factory, labelled_frame):
    base = tmp_path_factory.mktemp("model")
    data = write_ulb_csv(labelled_frame.head(15_000), base / "train.csv")
    main_code = _run(["train", "--data", str(data), "--output-dir", str(base / "model")])
    assert main_code == 0
    return base / "model"


def _run(argv) -> int:
    try:
        main(argv)
    except SystemExit as done:
        return done.code or 0
    return 0


def test_scoring_a_folder_writes_one_output_per_input_equal_to_scoring_each(capsys, tmp_path, model_dir,
                                                                            batch_frame):
    inputs = tmp_path / "incoming"
    inputs.mkdir()
    write_ulb_csv(batch_frame.iloc[:2000], inputs / "day-1.csv")
    batch_frame.iloc[2000:].reset_index(drop=True).to_parquet(inputs / "day-2.parquet")
    code, out, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", inputs,
                           "--output", tmp_path / "scored")
    assert code == 0, err
    stats = json.loads((tmp_path / "scored" / "inference_stats.json").read_text())
    assert [entry["rows"] for entry in stats["files"]] == [2000, 3000]
    for name in ("day-1.csv", "day-2.parquet"):
        code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", inputs / name,
                             "--output", tmp_path / "one" / name)
        assert code == 0, err
        assert (tmp_path / "scored" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_scoring_many_files_into_a_file_is_refused(capsys, tmp_path, model_dir, batch_frame):
    inputs = tmp_path / "incoming"
    for name in ("x", "y"):
        write_ulb_csv(batch_frame.iloc[:100], inputs / name / "same.csv")
    (tmp_path / "taken.csv").write_text("x")
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", f"{inputs}/*/same.csv",
                         "--output", tmp_path / "out")
    assert code == 2 and "same.csv" in err
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", f"{inputs}/x/*",
                         "--output", tmp_path / "taken.csv")
    # A glob may match more files tomorrow: it always writes into a folder.
    assert code == 2 and "needs a folder" in err


def test_a_folder_holding_one_table_still_scores_into_a_folder(capsys, tmp_path, model_dir, batch_frame):
    inputs = tmp_path / "incoming"
    write_ulb_csv(batch_frame.iloc[:500], inputs / "only.csv")
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", inputs,
                         "--output", tmp_path / "scored")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "scored" / "only.csv")) == 500


def test_scoring_into_the_inputs_own_folder_is_refused_and_the_inputs_stay(capsys, tmp_path, model_dir,
                                                                           batch_frame):
    inputs = tmp_path / "incoming"
    write_ulb_csv(batch_frame.iloc[:300], inputs / "a.csv")
    write_ulb_csv(batch_frame.iloc[300:600], inputs / "b.csv")
    before = {path.name: path.read_bytes() for path in inputs.iterdir()}
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", f"{inputs}/*.csv",
                         "--output", inputs)
    assert code == 2 and "would replace them" in err
    assert {path.name: path.read_bytes() for path in inputs.iterdir()} == before


def test_an_unreachable_scheduler_is_one_line_not_a_traceback(capsys, tmp_path, model_dir, batch_frame,
                                                              monkeypatch):
    from fraud_assets.core.cluster import client

    write_ulb_csv(batch_frame.iloc[:100], tmp_path / "incoming" / "a.csv")
    write_ulb_csv(batch_frame.iloc[100:200], tmp_path / "incoming" / "b.csv")
    monkeypatch.setenv("FRAUD_DASK_SCHEDULER", "tcp://127.0.0.1:9")  # the discard port: refused
    monkeypatch.setattr(client, "CONNECT_TIMEOUT_SECONDS", 2)
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", tmp_path / "incoming",
                         "--output", tmp_path / "scored")
    assert code == 1 and "no Dask scheduler answers at tcp://127.0.0.1:9" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("bad_name", ["a_first.csv", "z_last.csv"])
def test_a_refused_file_among_many_stops_none_of_the_others(capsys, tmp_path, model_dir, batch_frame, bad_name):
    inputs = tmp_path / "incoming"
    inputs.mkdir()
    write_ulb_csv(batch_frame.iloc[:400], inputs / "good-1.csv")
    batch_frame.iloc[400:900].reset_index(drop=True).to_parquet(inputs / "good-2.parquet")
    bad = batch_frame.iloc[900:1200].reset_index(drop=True)
    bad.loc[11, "V3"] = None
    write_ulb_csv(bad, inputs / bad_name)
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", inputs,
                         "--output", tmp_path / "scored")
    # Whatever the order: the good files are scored, the bad one is named with its row and column.
    assert code == 2
    assert bad_name in err and "'V3'" in err and "data row 12" in err and "2 of 3 file(s) scored" in err
    assert len(pd.read_csv(tmp_path / "scored" / "good-1.csv")) == 400
    assert len(pd.read_parquet(tmp_path / "scored" / "good-2.parquet")) == 500
    assert not (tmp_path / "scored" / bad_name).exists()
    stats = {entry["input"].rsplit("/", 1)[-1]: entry
             for entry in json.loads((tmp_path / "scored" / "inference_stats.json").read_text())["files"]}
    assert stats["good-1.csv"]["rows"] == 400 and "'V3'" in stats[bad_name]["refused"]


def test_a_killed_folder_runs_temporaries_are_removed_by_the_next_run(capsys, tmp_path, model_dir, batch_frame):
    import os
    import time

    inputs = tmp_path / "incoming"
    write_ulb_csv(batch_frame.iloc[:300], inputs / "a.csv")
    write_ulb_csv(batch_frame.iloc[300:600], inputs / "b.csv")
    scored = tmp_path / "scored"
    scored.mkdir()
    leftovers = [scored / ".a.csv.tmp-0123456789ab", scored / ".inference_stats.json.tmp-0123456789ab"]
    for leftover in leftovers:
        leftover.write_text("a killed run's half-written file")
        os.utime(leftover, (time.time() - 60, time.time() - 60))
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", inputs, "--output", scored)
    assert code == 0, err
    assert sorted(path.name for path in scored.iterdir()) == ["a.csv", "b.csv", "inference_stats.json"]


def test_scoring_a_file_onto_itself_is_refused_and_the_file_stays(capsys, tmp_path, model_dir, batch_frame):
    batch = write_ulb_csv(batch_frame.iloc[:300], tmp_path / "batch.csv")
    (tmp_path / "link.csv").symlink_to(batch)
    before = batch.read_bytes()
    for output in (batch, tmp_path / "link.csv"):
        code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", batch, "--output", output)
        assert code == 2 and "is the input" in err
    assert batch.read_bytes() == before and (tmp_path / "link.csv").is_symlink()


def test_a_folder_counts_a_symlinked_file_as_a_glob_does(capsys, tmp_path, model_dir, batch_frame):
    elsewhere = write_ulb_csv(batch_frame.iloc[:300], tmp_path / "elsewhere.csv")
    inputs = tmp_path / "incoming"
    inputs.mkdir()
    (inputs / "linked.csv").symlink_to(elsewhere)
    (inputs / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    for spelling, out in ((inputs, "by-folder"), (f"{inputs}/*.csv", "by-glob")):
        code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", spelling,
                             "--output", tmp_path / out)
        assert code == 0, err
        assert sorted(p.name for p in (tmp_path / out).iterdir()) == ["inference_stats.json", "linked.csv"]
    # Into its own folder: the link would be replaced by predictions.
    code, _, err = fraud(capsys, "score", "--model-dir", model_dir, "--input", inputs, "--output", inputs)
    assert code == 2 and "would replace them" in err and (inputs / "linked.csv").is_symlink()

