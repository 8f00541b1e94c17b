"""Progress on a terminal, silence elsewhere, and -v/-vv logging of what the core does."""

from __future__ import annotations

import functools
import os
import pty
import subprocess
import sys

import pytest

from fraud_assets.cli import progress
from fraud_assets.core.data.tables import write_table
from fraud_assets.core.model.training import TrainingConfig

from .test_cli import fraud


@pytest.fixture(autouse=True)
def fast_training(monkeypatch):
    monkeypatch.setattr("fraud_assets.core.model.training.TrainingConfig",
                        functools.partial(TrainingConfig, n_estimators=60, early_stopping_rounds=20))


@pytest.fixture
def batch_csv(batch_frame, tmp_path):
    path = tmp_path / "batch.csv"
    write_table(batch_frame, str(path))
    return path


@pytest.fixture
def terminal(monkeypatch):
    """The terminal branch, drawn from the first update on."""
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    monkeypatch.setattr(progress, "FIRST_DRAW_SECONDS", 0.0)
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0.0)


# Draws from the first update, as the fixture does, in a process of its own.
_DRIVER = (
    "import sys\n"
    "from fraud_assets.cli import progress\n"
    "progress.FIRST_DRAW_SECONDS = progress.REDRAW_SECONDS = 0.0\n"
    "from fraud_assets.cli.main import main\n"
    "main(sys.argv[1:])\n"
)


def _fraud_process(argv: list[str], *, stderr_on_terminal: bool) -> tuple[int, str, str]:
    """``fraud ARGV`` in a new process whose stderr is a pseudo-terminal or a pipe."""
    command = [sys.executable, "-c", _DRIVER, *map(str, argv)]
    if not stderr_on_terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL) as process:
        os.close(follower)
        seen = bytearray()
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            seen += data
        stdout = process.stdout.read().decode()
    os.close(leader)
    return process.returncode, stdout, seen.decode()


def test_scoring_progress_is_drawn_on_a_terminal_and_absent_from_a_pipe(model_dir, batch_csv, tmp_path):
    argv = ["score", "--model-dir", model_dir, "--input", batch_csv, "--output", tmp_path / "p.parquet",
            "--chunk-rows", "1000"]
    code, stdout, terminal_output = _fraud_process(argv, stderr_on_terminal=True)
    assert code == 0, terminal_output
    assert f"\rscoring {batch_csv}: 1,000 rows" in terminal_output
    assert f"scoring {batch_csv}: 5,000 rows" in terminal_output
    assert '"rows": 5000' in stdout  # the result stays on stdout, unchanged

    code, stdout, stderr = _fraud_process(argv, stderr_on_terminal=False)
    assert code == 0 and stderr == ""
    assert '"rows": 5000' in stdout


def test_progress_waits_before_its_first_line(monkeypatch, capsys):
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    with progress.Progress("quick", total=10) as bar:
        bar.add(10)  # done before FIRST_DRAW_SECONDS: a small file shows nothing
    assert capsys.readouterr().err == ""


def test_each_long_command_shows_its_steps(terminal, capsys, labelled_frame, model_dir, batch_csv, tmp_path):
    data = tmp_path / "train.parquet"
    code, _, err = fraud(capsys, "generate", "--n-samples", "3000", "--output", tmp_path / "g.csv")
    assert code == 0
    assert "generating 3,000 transactions: 3,000/3,000 rows (100%)" in err
    assert f"writing {tmp_path / 'g.csv'}: 3,000/3,000 rows (100%)" in err

    write_table(labelled_frame, str(data))
    code, _, err = fraud(capsys, "train", "--data", data, "--output-dir", tmp_path / "model")
    assert code == 0, err
    rows = f"{len(labelled_frame):,}"
    assert f"reading {data}: {rows}/{rows} rows (100%)" in err  # Parquet states its rows
    assert "training: boosting round 1 of at most 60" in err

    code, _, err = fraud(capsys, "drift", "--reference", data, "--current", batch_csv, "--model-dir",
                         model_dir, "--output", tmp_path / "drift.json")
    assert code == 0, err
    assert f"reading {data}: {rows}/{rows} rows" in err
    assert f"comparing {batch_csv}: 5,000 rows" in err  # a CSV is not counted ahead
    assert err.endswith("\n")  # the next prompt starts on a line of its own


def test_no_progress_when_stderr_is_not_a_terminal(capsys, labelled_frame, tmp_path):
    data = tmp_path / "train.csv"
    write_table(labelled_frame, str(data))
    code, out, err = fraud(capsys, "train", "--data", data, "--output-dir", tmp_path / "model")
    assert code == 0 and err == ""
    assert "test AUPRC" in out


def test_verbosity_logs_what_the_core_does(capsys, model_dir, batch_csv, tmp_path):
    argv = ["score", "--model-dir", model_dir, "--input", batch_csv, "--output", tmp_path / "p.csv",
            "--chunk-rows", "2000"]
    _, _, quiet = fraud(capsys, *argv)
    _, _, info = fraud(capsys, "-v", *argv)
    _, _, debug = fraud(capsys, "-vv", *argv)
    assert quiet == ""
    assert "INFO fraud_assets.core.model.scoring" in info and "scored 5000 rows" in info
    assert "DEBUG" not in info
    assert "DEBUG fraud_assets.core.model.scoring" in debug and "rows 4001 to 5000 scored" in debug
    # A later run without -v is quiet again.
    assert fraud(capsys, *argv)[2] == ""


def test_a_log_record_never_runs_on_after_a_progress_line(terminal, capsys):
    import logging

    progress.configure_logging(1)
    try:
        with progress.Progress("working") as bar:
            bar.add(5)
            logging.getLogger("fraud_assets.core").info("halfway")
            bar.add(5)
    finally:
        progress.configure_logging(0)
    err = capsys.readouterr().err
    lines = err.split("\n")
    record = next(i for i, line in enumerate(lines) if line.endswith("INFO fraud_assets.core: halfway"))
    assert lines[record - 1].startswith("\rworking: 5 rows")  # ended before the record
    assert lines[record + 1].startswith("\rworking: 10 rows")
