"""A run SIGKILLed at any stage of scoring a day or applying a label file: the next run, in
another process, scores every batch file exactly once, applies the label file exactly once,
and leaves no temporary, nothing quarantined, no run STARTED."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from fraud_assets.core.data.tables import write_table
from fraud_assets.definitions import build_definitions
from fraud_assets.defs.local_run_launcher import fail_runs_without_worker
from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.graph import kill_run
from fraud_assets_tests.graph.kill_run import DAY, LABEL_STAGES, SCORING_STAGES, VICTIM

from .conftest import FAST_TRAINING, FRAUD_RATE

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# Name order is scoring order; CSV and Parquet both.
BATCHES = {f"{DAY}_a.csv": 2_000, f"{DAY}_b.parquet": 1_700, f"{DAY}_c.csv": 1_500}
LABEL_FILE = "2025-03-06_chargebacks.csv"
# Files the re-run must score: those the killed run had not recorded as scored.
LEFT_TO_SCORE = {
    "while_scoring": len(BATCHES) - VICTIM + 1,
    "before_output_rename": len(BATCHES) - VICTIM + 1,
    "before_move_to_processed": len(BATCHES) - VICTIM + 1,
    "after_move_to_processed": len(BATCHES) - VICTIM + 1,
    "after_last_summary": 0,
}


VICTIM_NAME, VICTIM_STEM = list(BATCHES)[VICTIM - 1], list(BATCHES)[VICTIM - 1].rsplit(".", 1)[0]


def _left_by_the_killed_run(project: Path) -> dict[str, bool]:
    """What the killed run had done to the file it was killed at."""
    predictions = project / "data" / "predictions" / f"date={DAY}"
    return {
        "temporary": any(p.name.startswith(f".{VICTIM_STEM}.parquet.tmp-") for p in predictions.glob(".*")),
        "predictions": (predictions / f"{VICTIM_STEM}.parquet").exists(),
        "processed": (project / "data" / "processed" / DAY / VICTIM_NAME).exists(),
        "summary": (predictions / f"{VICTIM_STEM}.stats.json").exists(),
    }


# Where each stage kills the run, seen from the victim's files.
LEFT_BEHIND = {
    "while_scoring": {"temporary": True, "predictions": False, "processed": False, "summary": False},
    "before_output_rename": {"temporary": True, "predictions": False, "processed": False, "summary": False},
    "before_move_to_processed": {"temporary": False, "predictions": True, "processed": False, "summary": False},
    "after_move_to_processed": {"temporary": False, "predictions": True, "processed": True, "summary": False},
    "after_last_summary": {"temporary": False, "predictions": True, "processed": True, "summary": True},
}


def _use_project(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setenv("FRAUD_LOCAL_DIR", str(root))
    monkeypatch.setenv("FRAUD_ENV", "local")
    for name in ("FRAUD_PUSHGATEWAY_URL", "FRAUD_SLACK_WEBHOOK_URL", "FRAUD_AUPRC_FLOOR"):
        monkeypatch.delenv(name, raising=False)
    # dagster.yaml's storage paths are relative to the project folder.
    monkeypatch.chdir(root)


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """A project with a production model and the day's batches in incoming/ ("fresh"), and
    the same with the day scored ("scored"); each test works on a copy."""
    fresh = tmp_path_factory.mktemp("fresh")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _use_project(monkeypatch, fresh)
        raw = generate_transactions(40_000, seed=3, n_days=2, fraud_rate=FRAUD_RATE)
        write_table(raw, str(fresh / "data" / "raw" / "creditcard.csv"))
        with dg.instance_for_test() as instance:
            trained = build_definitions("local").resolve_job_def("training_job").execute_in_process(
                instance=instance, run_config=FAST_TRAINING
            )
            assert trained.success
        for seed, (name, rows) in enumerate(BATCHES.items()):
            frame = generate_transactions(rows, seed=20 + seed, start_day=3, n_days=1, labels=False)
            write_table(frame, str(fresh / "data" / "incoming" / name))
        scored = tmp_path_factory.mktemp("scored") / "project"
        shutil.copytree(fresh, scored)
        _use_project(monkeypatch, scored)
        with dg.instance_for_test() as instance:
            assert kill_run.score_day(instance).success
    return {"fresh": fresh, "scored": scored}


@pytest.fixture(scope="module")
def forkserver():
    """Children forked from a server that imported Dagster and the code location once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["fraud_assets_tests.graph.kill_run"])
    return context


def _copy(templates, which: str, tmp_path: Path, monkeypatch) -> Path:
    project = tmp_path / "project"
    shutil.copytree(templates[which], project)
    _use_project(monkeypatch, project)
    return project


def _kill_at(forkserver, project: Path, stage: str, label_file: str | None = None) -> None:
    child = forkserver.Process(target=kill_run.run_and_die, args=(str(project), stage, label_file))
    child.start()
    child.join(timeout=180)
    assert child.exitcode == -signal.SIGKILL, f"{stage}: the run was not killed (exit {child.exitcode})"


def _fail_the_killed_run(instance) -> None:
    (killed,) = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    assert fail_runs_without_worker(instance) == [killed.run_id]
    assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE


def _temporaries(project: Path) -> list[str]:
    return [
        str(path.relative_to(project)) for path in project.rglob("*")
        if ".tmp-" in path.name and ".dagster_home" not in path.parts
    ]


def _nothing_quarantined(project: Path) -> None:
    quarantine = project / "data" / "quarantine"
    assert not quarantine.exists() or not os.listdir(quarantine)


@pytest.mark.parametrize("stage", SCORING_STAGES)
def test_a_killed_scoring_run_is_completed_by_the_next_run(stage, templates, forkserver, tmp_path, monkeypatch):
    project = _copy(templates, "fresh", tmp_path, monkeypatch)
    _kill_at(forkserver, project, stage)
    assert _left_by_the_killed_run(project) == LEFT_BEHIND[stage]

    with kill_run.local_instance(project) as instance:
        _fail_the_killed_run(instance)
        # A temporary is stale after this many seconds: at once, here, instead of 6 h.
        rerun = kill_run.score_day(instance, stale_temporary_seconds=0)
    assert rerun.success
    (materialization,) = rerun.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["newly_scored_files"].value == LEFT_TO_SCORE[stage]
    assert metadata["rows"].value == sum(BATCHES.values())

    processed = project / "data" / "processed" / DAY
    predictions = project / "data" / "predictions" / f"date={DAY}"
    assert sorted(os.listdir(processed)) == sorted(BATCHES)
    assert not list((project / "data" / "incoming").iterdir())
    for name, rows in BATCHES.items():
        stem = name.rsplit(".", 1)[0]
        scored = pd.read_parquet(predictions / f"{stem}.parquet")
        path = processed / name
        source = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
        assert len(scored) == len(source) == rows, name
        assert not scored["transaction_id"].duplicated().any(), name
        assert json.loads((predictions / f"{stem}.stats.json").read_text())["rows"] == rows
    assert _temporaries(project) == []
    _nothing_quarantined(project)


@pytest.mark.parametrize("stage", LABEL_STAGES)
def test_a_killed_labels_run_applies_its_file_exactly_once(stage, templates, forkserver, tmp_path, monkeypatch):
    project = _copy(templates, "scored", tmp_path, monkeypatch)
    folder = project / "data" / "predictions" / f"date={DAY}"
    # Row-number ids repeat across the day's files, so each label names its batch.
    labels = pd.concat(
        pd.DataFrame({
            "transaction_id": pd.read_parquet(folder / f"{name.rsplit('.', 1)[0]}.parquet")[
                "transaction_id"].astype(str).iloc[::97],
            "transaction_date": DAY,
            "Class": 1,
            "batch_file": name,
        })
        for name in BATCHES
    )
    (project / "data" / "labels").mkdir(parents=True)
    labels.to_csv(project / "data" / "labels" / LABEL_FILE, index=False)

    _kill_at(forkserver, project, stage, LABEL_FILE)
    # Killed after the day's labels were written, before or after the file was moved.
    assert (project / "data" / "assets" / "transaction_labels" / f"{DAY}.parquet").exists()
    assert (project / "data" / "labels" / LABEL_FILE).exists() == (stage == "labels_before_move")
    with kill_run.local_instance(project) as instance:
        _fail_the_killed_run(instance)
        assert kill_run.apply_label_file(instance, LABEL_FILE).success

    assert not (project / "data" / "labels" / LABEL_FILE).exists()
    assert (project / "data" / "labels" / "processed" / LABEL_FILE).exists()
    stored = pd.read_parquet(project / "data" / "assets" / "transaction_labels" / f"{DAY}.parquet")
    assert len(stored) == len(labels)
    assert not stored.duplicated(["batch_file", "transaction_id"]).any()
    assert set(zip(stored["batch_file"], stored["transaction_id"], strict=True)) == set(
        zip(labels["batch_file"].str.rsplit(".", n=1).str[0], labels["transaction_id"], strict=True)
    )
    assert _temporaries(project) == []
    _nothing_quarantined(project)
