"""Sensors: score batch files as they land in ``incoming/``.

The cursor holds every file already requested that is still in ``incoming/`` (name and
ETag). Scored files move to ``processed/`` and drop out of it, so it stays as small as the
backlog. Comparing names, not timestamps, means no file is lost when several land in the
same second, or when a slow multipart upload is stamped with its start time.

It also counts the ticks that requested runs. Run keys include that count: a tick evaluated
again after a failure (its cursor was not stored) asks for the same runs under the same
keys, which Dagster skips, while a file delivered again after it was scored gets a new key
(Dagster skips a key it has seen forever, which would strand the file).
"""

import hashlib
import json
import posixpath
from dataclasses import dataclass

import dagster as dg

from fraud_assets.core.data.tables import is_table_file
from fraud_assets.core.storage.locations import Location
from fraud_assets.defs.batches import batch_date, quarantine
from fraud_assets.defs.jobs import scoring_job
from fraud_assets.defs.partitions import MAX_DAYS_EARLY, PARTITIONS_START, daily_partitions, is_early_day
from fraud_assets.defs.resources import DatasetSettings, FraudStorage

MAX_FILES_PER_TICK = 200


@dataclass(frozen=True)
class IncomingFile:
    path: str
    name: str
    modified: float
    tag: str  # changes when the object is replaced


def list_incoming(data: Location, prefix: str) -> list[IncomingFile]:
    directory = data.path(prefix)
    fs = data.fs
    if not fs.exists(directory):
        return []
    files = []
    for entry in fs.ls(directory, detail=True):
        name = posixpath.basename(entry["name"])
        if entry.get("type") != "file" or name.startswith("."):
            continue  # hidden names are uploads in progress
        modified = entry.get("LastModified") or entry.get("mtime") or 0
        modified = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
        tag = str(entry.get("ETag") or f"{entry.get('size')}-{modified}").strip('"')
        files.append(IncomingFile(entry["name"], name, modified, tag))
    return sorted(files, key=lambda f: (f.modified, f.name))


def select_new_files(
    files: list[IncomingFile], requested: dict[str, str], limit: int
) -> tuple[list[IncomingFile], dict[str, str]]:
    """Oldest files not yet requested (by name and tag), at most ``limit``; and the cursor
    to store: previous requests still present, plus this tick's."""
    present = {f.name: f.tag for f in files}
    still_pending = {name: tag for name, tag in requested.items() if present.get(name) == tag}
    new = [f for f in files if still_pending.get(f.name) != f.tag][:limit]
    return new, {**still_pending, **{f.name: f.tag for f in new}}


def read_cursor(cursor: str | None) -> tuple[int, dict[str, str]]:
    """(ticks that requested runs, requested files still present: name -> tag)."""
    if not cursor:
        return 0, {}
    document = json.loads(cursor)
    if "requested" not in document:  # the earlier form: the mapping alone
        return 0, document
    return int(document["requesting_ticks"]), document["requested"]


def write_cursor(requesting_ticks: int, requested: dict[str, str]) -> str:
    return json.dumps({"requesting_ticks": requesting_ticks, "requested": requested}, sort_keys=True)


def _rejection(file: IncomingFile) -> str | None:
    if not is_table_file(file.name):
        return "not a batch file: expected a .csv or .parquet name"
    date = batch_date(file.name)
    if date is None:
        return "file name does not start with its date (YYYY-MM-DD)"
    if not daily_partitions.has_partition_key(date):
        return (
            f"date {date} is not a day of the scoring partitions (from {PARTITIONS_START} to "
            f"{MAX_DAYS_EARLY} days after today)"
        )
    return None


def build_incoming_sensor(*, running: bool) -> dg.SensorDefinition:
    @dg.sensor(
        name="incoming_batch_sensor",
        job=scoring_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        description="Scores each new file under incoming/ once, at most "
        f"{MAX_FILES_PER_TICK} files per tick; misnamed files go to quarantine/.",
    )
    def incoming_batch_sensor(
        context: dg.SensorEvaluationContext, storage: FraudStorage, dataset: DatasetSettings
    ) -> dg.SensorResult:
        data = storage.data()
        requesting_ticks, requested = read_cursor(context.cursor)
        files = list_incoming(data, dataset.incoming_prefix)
        # Left out of the selection, not only of the runs: an early file is neither requested
        # nor kept in the cursor, so it is looked at again each tick until its day exists.
        early = [f for f in files if is_table_file(f.name) and is_early_day(batch_date(f.name) or "")]
        if early:
            context.log.info(
                "%d file(s) dated after today wait for their partition: %s",
                len(early), ", ".join(f.name for f in early[:3]),
            )
            files = [f for f in files if f not in early]
        new, cursor = select_new_files(files, requested, MAX_FILES_PER_TICK)

        by_day: dict[str, list[IncomingFile]] = {}
        for file in new:
            reason = _rejection(file)
            if reason is not None:
                quarantine(data, file.path, dataset.quarantine_prefix, f"{file.name}: {reason}")
                cursor.pop(file.name, None)
                context.log.warning("quarantined %s: %s", file.name, reason)
                continue
            by_day.setdefault(batch_date(file.name), []).append(file)

        run_requests = []
        for day, day_files in sorted(by_day.items()):
            identity = f"{requesting_ticks}:" + ",".join(f"{f.name}@{f.tag}" for f in day_files)
            run_requests.append(
                dg.RunRequest(
                    run_key=f"incoming:{day}:{hashlib.sha256(identity.encode()).hexdigest()[:16]}",
                    partition_key=day,
                    run_config={
                        "ops": {
                            "daily_predictions": {
                                "config": {"files": [f.name for f in day_files], "rescore": True}
                            }
                        }
                    },
                    tags={"fraud/trigger": "incoming_batch_sensor"},
                )
            )
        if run_requests:
            requesting_ticks += 1
        return dg.SensorResult(
            run_requests=run_requests, cursor=write_cursor(requesting_ticks, cursor)
        )

    return incoming_batch_sensor
