"""The incoming-file sensor on the embedded default watches data/incoming/ on local disk."""

import json
import os

import dagster as dg

from fraud_assets.definitions import build_definitions
from fraud_assets.defs.sensors import build_incoming_sensor

from .conftest import DAY, write_batch


def tick(instance, cursor=None):
    defs = build_definitions("local")
    resources = {k: v for k, v in defs.resources.items() if k in ("storage", "dataset")}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return build_incoming_sensor(running=False)(context)


def test_local_incoming_folder_is_watched(project, instance):
    write_batch(project, f"{DAY}_second.parquet", rows=50)
    (project / "data" / "incoming" / "notes.csv").write_text("Time\n1\n")
    (project / "data" / "incoming" / f".{DAY}_partial.csv").write_text("uploading")

    result = tick(instance)
    (request,) = result.run_requests
    assert request.partition_key == DAY
    files = request.run_config["ops"]["daily_predictions"]["config"]["files"]
    assert sorted(files) == [f"{DAY}_morning.csv", f"{DAY}_second.parquet"]
    # Misnamed: set aside with a reason. Hidden: an upload in progress, left alone.
    assert (project / "data" / "quarantine" / "notes.csv").exists()
    reason = json.loads((project / "data" / "quarantine" / "notes.csv.reason.json").read_text())
    assert "date" in reason["reason"]
    assert (project / "data" / "incoming" / f".{DAY}_partial.csv").exists()

    assert tick(instance, result.cursor).run_requests == []


def _tick_after(instance, completed_at: float, cursor=None):
    """A tick whose previous tick completed at ``completed_at`` (the daemon's bookkeeping,
    which build_sensor_context leaves unset)."""
    defs = build_definitions("local")
    resources = {k: v for k, v in defs.resources.items() if k in ("storage", "dataset")}
    context = dg.SensorEvaluationContext(
        instance_ref=None, last_tick_completion_time=completed_at, last_run_key=None,
        cursor=cursor, repository_name=None, instance=instance, resources=resources,
    )
    return build_incoming_sensor(running=False)(context)


def test_a_retried_tick_asks_for_the_same_run(project, instance):
    first, retried = _tick_after(instance, 1_000.0), _tick_after(instance, 1_000.0)
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in retried.run_requests]
    assert len(first.run_requests) == 1


def test_a_file_delivered_again_after_scoring_gets_a_new_run(project, instance):
    incoming = project / "data" / "incoming" / f"{DAY}_morning.csv"
    elsewhere = project / "scored.csv"
    first = _tick_after(instance, 1_000.0)
    (request,) = first.run_requests

    os.replace(incoming, elsewhere)  # the run scored it and moved it away
    emptied = _tick_after(instance, 1_030.0, first.cursor)
    assert emptied.run_requests == []
    os.replace(elsewhere, incoming)  # the same bytes, name and timestamp again

    again = _tick_after(instance, 1_060.0, emptied.cursor)
    (second,) = again.run_requests
    assert second.run_config == request.run_config
    assert second.run_key != request.run_key  # Dagster would skip a key it has seen
