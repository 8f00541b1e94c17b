"""Sensors of the loop in time: label files as they land, and the serving models as they change.

The label sensor keeps the incoming-batch sensor's guarantees (cursor of requested names and
tags, run keys that count requesting ticks): each label file is applied once. It reads only
the file's `transaction_date` column to know the days a run must cover; the run validates
the file whole and quarantines it when anything is wrong.
"""

import datetime as dt
import hashlib

import dagster as dg

from fraud_assets import settings
from fraud_assets.core.data.labels import TRANSACTION_DATE, read_label_file, report_date
from fraud_assets.core.data.schema import DataValidationError
from fraud_assets.core.data.tables import is_table_file
from fraud_assets.core.storage.failures import failure_kind, storage_operation
from fraud_assets.defs import catalog
from fraud_assets.defs.assets.outcomes import processed_labels_prefix
from fraud_assets.defs.assets.training import serving_uri, serving_versions
from fraud_assets.defs.batches import move_to, quarantine
from fraud_assets.defs.day_data import unscored_batch_days
from fraud_assets.defs.partitions import daily_partitions, is_early_day
from fraud_assets.defs.resources import DatasetSettings, FraudStorage
from fraud_assets.defs.sensors import list_incoming, read_cursor, select_new_files, write_cursor

MAX_LABEL_FILES_PER_TICK = 20

labels_job = dg.define_asset_job(
    "labels_job",
    selection=dg.AssetSelection.assets("transaction_labels"),
    partitions_def=daily_partitions,
    tags={"fraud/job": "labels"},
    description="Validate a label file and apply it to the transaction days it names.",
)


def _label_days(storage: FraudStorage, path: str) -> list[str]:
    data = storage.data()
    labels = read_label_file(path, fs=data.fs, source=data.display(path))
    return sorted(set(labels[TRANSACTION_DATE]))


def _waiting_reason(days: list[str], unscored: set[str], today: dt.date) -> str | None:
    """Why a good label file must wait: a day it names still has batches to score."""
    waiting = [d for d in days if d in unscored or dt.date.fromisoformat(d) >= today]
    return f"waiting for {', '.join(waiting[:3])} to be scored" if waiting else None


def _days_to_apply(context, storage: FraudStorage, dataset: DatasetSettings, file) -> list[str] | None:
    """The days a new label file names, or None when it was dealt with here: quarantined
    (unreadable, misnamed, days outside the partitions) or, empty, moved to processed/."""
    data = storage.data()
    try:
        if not is_table_file(file.name) or report_date(file.name) is None:
            raise DataValidationError(
                file.name, ["not a label file: expected YYYY-MM-DD*.csv or .parquet"]
            )
        days = _label_days(storage, file.path)
        # A day just after today is a producer's clock running ahead: it waits (below).
        outside = [
            d for d in days if not daily_partitions.has_partition_key(d) and not is_early_day(d)
        ]
        if outside:
            raise DataValidationError(
                file.name, [f"labels for days outside the partitions ({', '.join(outside[:3])})"]
            )
    except DataValidationError as error:
        quarantine(data, file.path, dataset.quarantine_prefix, str(error))
        context.log.warning("quarantined %s: %s", file.name, error)
        return None
    if not days:
        # A report with nothing in it (no fraud reported that day): nothing to apply.
        with storage_operation(f"moving {data.display(file.path)} to processed"):
            move_to(data, file.path, processed_labels_prefix(dataset))
        return None
    return days


def build_label_sensor(*, running: bool) -> dg.SensorDefinition:
    @dg.sensor(
        name="label_file_sensor",
        job=labels_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        description="Applies each new label file under labels/ once; unreadable or misnamed "
        "files go to quarantine/ with the reason.",
    )
    def label_file_sensor(
        context: dg.SensorEvaluationContext, storage: FraudStorage, dataset: DatasetSettings
    ) -> dg.SensorResult:
        data = storage.data()
        requesting_ticks, requested = read_cursor(context.cursor)
        files = list_incoming(data, dataset.labels_prefix)
        new, cursor = select_new_files(files, requested, MAX_LABEL_FILES_PER_TICK)
        unscored = unscored_batch_days(storage, dataset) if new else set()
        today = settings.today()
        run_requests = []
        for file in new:
            cursor.pop(file.name, None)  # until requested below, looked at again next tick
            try:
                days = _days_to_apply(context, storage, dataset, file)
            except Exception as error:
                if failure_kind(error) != "storage":
                    raise
                # The file may be fine: leave it where it is for the next tick.
                context.log.warning("%s: storage failed, tried again next tick: %s", file.name, error)
                continue
            if days is None:
                continue
            waiting = _waiting_reason(days, unscored, today)
            if waiting:
                context.log.info("%s: %s", file.name, waiting)
                continue
            cursor[file.name] = file.tag
            identity = f"{requesting_ticks}:{file.name}@{file.tag}"
            run_requests.append(
                dg.RunRequest(
                    run_key=f"labels:{hashlib.sha256(identity.encode()).hexdigest()[:16]}",
                    run_config={"ops": {"transaction_labels": {"config": {"files": [file.name]}}}},
                    tags={
                        "dagster/asset_partition_range_start": days[0],
                        "dagster/asset_partition_range_end": days[-1],
                        "fraud/trigger": "label_file_sensor",
                        "fraud/label_file": file.name,
                    },
                )
            )
        if run_requests:
            requesting_ticks += 1
        return dg.SensorResult(run_requests=run_requests, cursor=write_cursor(requesting_ticks, cursor))

    return label_file_sensor


def serving_events(storage: FraudStorage, instance: dg.DagsterInstance) -> list[dg.AssetMaterialization]:
    """A materialisation for each serving role whose model changed outside a run (a promotion
    or rollback from the command line, a decision on realised labels): Dagster then shows the
    version that serves, as the asset's data version."""
    events = []
    registry = storage.registry()
    for asset, version in serving_versions(registry).items():
        key = dg.AssetKey(asset)
        latest = instance.get_latest_materialization_event(key)
        recorded = latest.asset_materialization.tags.get("dagster/data_version") if latest else None
        if recorded != version:
            events.append(
                dg.AssetMaterialization(
                    asset_key=key,
                    description=f"now serving {version} (changed outside a run)",
                    metadata={
                        "model_version": version,
                        "previous_version": recorded or "none",
                        catalog.URI: serving_uri(registry, asset),
                    },
                    tags={"dagster/data_version": version},
                )
            )
    return events


def build_serving_sensor(*, running: bool) -> dg.SensorDefinition:
    @dg.sensor(
        name="serving_model_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        description="Records in Dagster which model serves and which is challenged, whoever "
        "changed it (`fraud model promote`, a decision on realised labels).",
    )
    def serving_model_sensor(context: dg.SensorEvaluationContext, storage: FraudStorage):
        events = serving_events(storage, context.instance)
        if not events:
            return dg.SkipReason("serving models unchanged")
        return dg.SensorResult(asset_events=events)

    return serving_model_sensor

