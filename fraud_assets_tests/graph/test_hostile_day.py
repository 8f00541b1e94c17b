"""A day of hostile files in Dagster: each bad file quarantined with its reason, every good
file scored in the same run; a storage outage fails the run and quarantines nothing."""

import json
import os
import re
import time

import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.hostile_files import corpus

from .conftest import DAY, run_pipeline


def _day_of_hostile_files(project):
    frame = generate_transactions(600, seed=9, start_day=3, n_days=1, fraud_rate=0.02)
    incoming = project / "data" / "incoming"
    cases = {}
    for case in corpus():
        name = f"{DAY}_{case.name}"
        (incoming / name).write_bytes(case.build(frame))
        cases[name] = case
    return cases


def test_bad_files_are_quarantined_and_every_good_file_scored_in_one_run(project, instance):
    assert run_pipeline(instance).success  # trains, promotes, scores the morning batch
    cases = _day_of_hostile_files(project)
    predictions = project / "data" / "predictions" / f"date={DAY}"
    orphan = predictions / f".{DAY}_morning.parquet.tmp-0123456789ab"
    orphan.write_bytes(b"")  # what a SIGKILL between write and rename leaves
    old = time.time() - 7 * 3600
    os.utime(orphan, (old, old))

    result = run_pipeline(instance, job="scoring_job")
    assert result.success
    quarantine = project / "data" / "quarantine"
    for name, case in cases.items():
        if case.refused:
            assert (quarantine / name).exists() and not (project / "data" / "incoming" / name).exists()
            reason = json.loads((quarantine / f"{name}.reason.json").read_text())["reason"]
            assert re.search(case.expect, reason), (name, reason)
            assert not (predictions / f"{name.rsplit('.', 1)[0]}.parquet").exists()
        else:
            scored = pd.read_parquet(predictions / f"{name.rsplit('.', 1)[0]}.parquet")
            assert len(scored) == 600, name
    leftovers = [n for n in os.listdir(predictions) + os.listdir(quarantine) if ".tmp-" in n]
    assert leftovers == []
    # Content faults are never retried as if transient.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_storage_outage_fails_the_run_quarantines_nothing_and_the_rerun_completes(
    project, instance, monkeypatch
):
    assert run_pipeline(instance).success
    batch = project / "data" / "incoming" / f"{DAY}_late.parquet"
    generate_transactions(800, seed=4, start_day=3, n_days=1, labels=False).to_parquet(batch, index=False)
    original_open = LocalFileSystem._open

    def failing_open(self, path, mode="rb", **kwargs):
        handle = original_open(self, path, mode, **kwargs)
        if "r" in mode and path.endswith("_late.parquet"):
            def read(*_args, **_kwargs):  # s3fs past its retries: a plain OSError
                raise OSError("An error occurred (ServiceUnavailable) when calling GetObject: 503")
            handle.read = read
        return handle

    monkeypatch.setattr(LocalFileSystem, "_open", failing_open)
    # The outage outlives the step's retries (at once here: FRAUD_RETRY_DELAY_SECONDS=0).
    failed = run_pipeline(instance, job="scoring_job")
    assert not failed.success
    assert len([e for e in failed.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 2
    assert batch.exists()
    assert not (project / "data" / "quarantine").exists() or not os.listdir(project / "data" / "quarantine")

    monkeypatch.setattr(LocalFileSystem, "_open", original_open)
    rerun = run_pipeline(instance, job="scoring_job")
    assert rerun.success
    scored = pd.read_parquet(project / "data" / "predictions" / f"date={DAY}" / f"{DAY}_late.parquet")
    assert len(scored) == 800


def test_entries_that_are_not_files_do_not_stop_the_day(project, instance):
    assert run_pipeline(instance).success
    incoming = project / "data" / "incoming"
    (incoming / f"{DAY}_folder.csv").mkdir()
    (incoming / f"{DAY}_dangling.csv").symlink_to(incoming / "gone.csv")
    (incoming / f"{DAY}_loop.parquet").symlink_to(incoming / f"{DAY}_loop.parquet")
    generate_transactions(700, seed=6, start_day=3, n_days=1, labels=False).to_csv(
        incoming / f"{DAY}_evening.csv", index=False
    )

    result = run_pipeline(instance, job="scoring_job")
    assert result.success
    scored = pd.read_parquet(project / "data" / "predictions" / f"date={DAY}" / f"{DAY}_evening.parquet")
    assert len(scored) == 700


def test_a_file_whose_predictions_would_overwrite_another_is_quarantined(project, instance):
    # morning.csv is scored by the first run; its Parquet twin arrives later the same day.
    assert run_pipeline(instance).success
    incoming = project / "data" / "incoming"
    twin = incoming / f"{DAY}_morning.parquet"
    generate_transactions(500, seed=8, start_day=3, n_days=1, labels=False).to_parquet(twin, index=False)
    generate_transactions(400, seed=7, start_day=3, n_days=1, labels=False).to_csv(
        incoming / f"{DAY}_noon.csv", index=False
    )

    assert run_pipeline(instance, job="scoring_job").success
    quarantine = project / "data" / "quarantine"
    reason = json.loads((quarantine / f"{twin.name}.reason.json").read_text())["reason"]
    assert re.search(rf"{DAY}_morning\.csv of the same day has the same name", reason), reason
    assert os.listdir(incoming) == []
    predictions = project / "data" / "predictions" / f"date={DAY}"
    assert len(pd.read_parquet(predictions / f"{DAY}_morning.parquet")) == 3_000  # not overwritten
    assert len(pd.read_parquet(predictions / f"{DAY}_noon.parquet")) == 400


def test_a_range_with_one_day_of_only_bad_files_still_records_its_good_days(project, instance):
    import dagster as dg

    from fraud_assets.definitions import build_definitions

    from .conftest import write_batch

    assert run_pipeline(instance).success
    good_day, bad_day = "2025-03-05", "2025-03-06"
    write_batch(project, f"{good_day}_a.csv", rows=700, seed=8)
    (project / "data" / "incoming" / f"{bad_day}_bad.csv").write_text("Time,V1\n1,not-a-number\n")
    defs = build_definitions("local")
    result = dg.materialize(
        [defs.get_assets_def("daily_predictions")], instance=instance, resources=defs.resources,
        tags={"dagster/asset_partition_range_start": good_day, "dagster/asset_partition_range_end": bad_day},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert bad_day in failure.event_specific_data.error.message
    assert (project / "data" / "quarantine" / f"{bad_day}_bad.csv.reason.json").exists()

    key = dg.AssetKey("daily_predictions")
    recorded = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[good_day, bad_day]), limit=10
    ).records
    assert [record.partition_key for record in recorded] == [good_day]
    assert recorded[0].asset_materialization.metadata["rows"].value == 700
    assert good_day in instance.get_materialized_partitions(key)
    assert bad_day not in instance.get_materialized_partitions(key)
