"""Driver of the kill tests: runs a day's scoring or a label file through Dagster against a
persistent local instance and SIGKILLs its own process at a chosen stage.

SIGKILL cannot be caught: no ``finally`` block, context manager or Dagster hook runs, as when
the kernel's OOM killer or a host failure ends a run. The stage is reached by wrapping the
function that the code runs at that moment; what the run leaves behind is exactly what it
had done so far. The tests run it in a process forked from a server that has imported this
module (and with it Dagster and the code location) once.
"""

from __future__ import annotations

import os
import posixpath
import signal
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef
from fsspec.implementations.local import LocalFileSystem

import fraud_assets.core.model.file_outcomes as file_outcomes
import fraud_assets.core.model.scoring as scoring_core
import fraud_assets.defs.assets.outcomes as outcomes_asset
import fraud_assets.defs.day_scoring as day_scoring
from fraud_assets.core.storage.locations import is_temporary_name
from fraud_assets.definitions import build_definitions
from fraud_assets.defs.resources import DatasetSettings

REPO = Path(__file__).resolve().parents[2]
DAY = "2025-03-04"
# Small chunks, so that a kill while scoring finds a file half-scored.
CHUNK_ROWS = 500
# The batch file (in name order) at which a scoring stage kills the run: the files before it
# are done, the ones after it untouched.
VICTIM = 2
NOT_REACHED = 3  # exit code when the run ended without reaching its stage

SCORING_STAGES = (
    "while_scoring",
    "before_output_rename",
    "before_move_to_processed",
    "after_move_to_processed",
    "after_last_summary",
)
LABEL_STAGES = ("labels_before_move", "labels_after_move")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _calls(original, *, die_before: int | None = None, die_after: int | None = None, counted=None):
    """``original``, killing the process before or after its n-th counted call."""
    count = 0

    def wrapper(*args, **kwargs):
        nonlocal count
        if counted is None or counted(*args, **kwargs):
            count += 1
        if count == die_before:
            _die()
        result = original(*args, **kwargs)
        if count == die_after:
            _die()
        return result

    return wrapper


def _arm(stage: str, batch_files: int) -> None:
    if stage == "while_scoring":
        original_score = file_outcomes.score_file
        files_seen = 0

        def score(*args, **kwargs):
            nonlocal files_seen
            files_seen += 1
            if files_seen == VICTIM:
                # After its second chunk: the victim's predictions are half written.
                scoring_core.predict_chunk = _calls(scoring_core.predict_chunk, die_after=2)
            return original_score(*args, **kwargs)

        file_outcomes.score_file = score
    elif stage == "before_output_rename":
        def is_prediction_output(self, path1, path2, *args, **kwargs):
            return is_temporary_name(posixpath.basename(str(path1))) and str(path2).endswith(".parquet") \
                and "/predictions/" in str(path2)

        LocalFileSystem.mv = _calls(LocalFileSystem.mv, die_before=VICTIM, counted=is_prediction_output)
    elif stage == "before_move_to_processed":
        day_scoring.move_to = _calls(day_scoring.move_to, die_before=VICTIM)
    elif stage == "after_move_to_processed":
        day_scoring.move_to = _calls(day_scoring.move_to, die_after=VICTIM)
    elif stage == "after_last_summary":
        def is_summary(fs, path, document):
            return str(path).endswith(".stats.json")

        day_scoring.write_json_atomic = _calls(
            day_scoring.write_json_atomic, die_after=batch_files, counted=is_summary
        )
    elif stage == "labels_before_move":
        outcomes_asset.move_to = _calls(outcomes_asset.move_to, die_before=1)
    elif stage == "labels_after_move":
        outcomes_asset.move_to = _calls(outcomes_asset.move_to, die_after=1)
    elif stage != "none":
        raise ValueError(f"unknown stage {stage!r}")


def local_instance(project: Path) -> dg.DagsterInstance:
    """The instance `fraud demo` uses (the repository's dagster.yaml), homed in ``project``."""
    home = project / ".dagster_home"
    home.mkdir(exist_ok=True)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(REPO)))


def score_day(instance: dg.DagsterInstance, *, stale_temporary_seconds: int | None = None):
    """``daily_predictions`` for DAY, through Dagster, as the scoring job runs it."""
    defs = build_definitions("local")
    dataset = DatasetSettings(scoring_chunk_rows=CHUNK_ROWS, **(
        {} if stale_temporary_seconds is None else {"stale_temporary_seconds": stale_temporary_seconds}
    ))
    return dg.materialize(
        [defs.get_assets_def("daily_predictions")],
        instance=instance,
        partition_key=DAY,
        resources={**defs.resources, "dataset": dataset},
        tags={"fraud/job": "scoring"},
        raise_on_error=False,
    )


def apply_label_file(instance: dg.DagsterInstance, name: str):
    """``labels_job`` for one label file naming DAY, as the label sensor requests it."""
    job = build_definitions("local").resolve_job_def("labels_job")
    return job.execute_in_process(
        instance=instance,
        run_config={"ops": {"transaction_labels": {"config": {"files": [name]}}}},
        tags={"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": DAY,
              "fraud/label_file": name},
        raise_on_error=False,
    )


def run_and_die(project: str, stage: str, label_file: str | None = None) -> None:
    """The child's body: run, and be killed at ``stage``; exit NOT_REACHED if it never came."""
    root = Path(project)
    os.environ["FRAUD_LOCAL_DIR"] = project
    os.environ["FRAUD_ENV"] = "local"
    # dagster.yaml's storage paths are relative to the project folder.
    os.chdir(root)
    batch_files = len(list((root / "data" / "incoming").iterdir())) if stage in SCORING_STAGES else 0
    _arm(stage, batch_files)
    with local_instance(root) as instance:
        if stage in LABEL_STAGES:
            apply_label_file(instance, label_file)
        else:
            score_day(instance)
    os._exit(NOT_REACHED)
