"""The incoming-file sensor on the embedded default watches data/incoming/ on local disk."""

import json
import os

import dagster as dg

from fraud_assets.definitions import build_definitions
from fraud_assets.defs.sensors import build_incoming_sensor, read_cursor, write_cursor

from .conftest import DAY, write_batch


def tick(instance, cursor=None, *, previous_tick_at: float | None = None):
    """One evaluation; ``previous_tick_at`` stands for the daemon's record of the last tick,
    which it updates after failed ticks too."""
    defs = build_definitions("local")
    resources = {k: v for k, v in defs.resources.items() if k in ("storage", "dataset")}
    context = dg.SensorEvaluationContext(
        instance_ref=None, last_tick_completion_time=previous_tick_at, last_run_key=None,
        cursor=cursor, repository_name=None, instance=instance, resources=resources,
    )
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


def test_a_tick_evaluated_again_after_a_failure_asks_for_the_same_run(project, instance):
    # A failed tick stores no cursor, so the next evaluation starts from the same one; the
    # daemon's last-tick time has moved on meanwhile.
    first = tick(instance, None, previous_tick_at=1_000.0)
    retried = tick(instance, None, previous_tick_at=1_030.0)
    assert len(first.run_requests) == 1
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in retried.run_requests]


def test_a_file_delivered_again_after_scoring_gets_a_new_run(project, instance):
    incoming = project / "data" / "incoming" / f"{DAY}_morning.csv"
    elsewhere = project / "scored.csv"
    first = tick(instance)
    (request,) = first.run_requests

    os.replace(incoming, elsewhere)  # the run scored it and moved it away
    emptied = tick(instance, first.cursor)
    assert emptied.run_requests == []
    os.replace(elsewhere, incoming)  # the same bytes, name and timestamp again

    again = tick(instance, emptied.cursor)
    (second,) = again.run_requests
    assert second.run_config == request.run_config
    assert second.run_key != request.run_key  # Dagster would skip a key it has seen


def test_a_cursor_in_the_earlier_form_is_read_as_the_requested_files():
    assert read_cursor('{"2025-03-04_morning.csv": "abc"}') == (0, {"2025-03-04_morning.csv": "abc"})
    assert read_cursor(write_cursor(3, {"a.csv": "t"})) == (3, {"a.csv": "t"})
    assert read_cursor(None) == (0, {})
