"""The incoming-file sensor on the embedded default watches data/incoming/ on local disk."""

import json

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
