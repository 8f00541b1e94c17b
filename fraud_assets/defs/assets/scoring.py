"""Scoring: each day's batch files scored with the production model."""

import time

import dagster as dg

from fraud_assets.core.data.schema import DataValidationError
from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.model.scoring import score_file
from fraud_assets.core.storage.failures import failure_kind, storage_operation
from fraud_assets.core.storage.locations import (
    Location,
    read_json,
    remove_stale_temporaries,
    write_json_atomic,
)
from fraud_assets.defs import catalog
from fraud_assets.defs.batches import (
    list_batch_files,
    move_to,
    name_clashes,
    prediction_name,
    processed_folder,
    quarantine,
    stats_name,
)
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure
from fraud_assets.defs.freshness import freshness_policy
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.presentation import score_histogram_chart
from fraud_assets.defs.resources import DatasetSettings, FraudStorage, MetricsPusher

GROUP = "scoring"
BATCH_CHECK = "batch_files_valid"


class ScoringConfig(dg.Config):
    files: list[str] | None = None
    """Only these batch file names (the incoming-file sensor sets this); default: all the day's."""
    rescore: bool = False
    """Score files again even if they already have predictions (e.g. after a rollback)."""


def load_production_model(registry: ModelRegistry):
    model = registry.load_production()
    if model is None:
        raise permanent_failure(
            f"no production model in {registry.location.url_of()}: "
            "materialise the training assets (or `fraud model promote VERSION`) first"
        )
    return model


def _rejection_reason(error: Exception, source: str) -> str:
    if isinstance(error, DataValidationError):
        return str(error)
    # Not a rule the reader knows by name, but still this file's content (storage failures
    # never get here): say what it raised, so someone can look.
    return f"{source}: unreadable: {type(error).__name__}: {error}"


def _remove_orphans(context, stores: list[tuple[Location, str]], older_than: int) -> None:
    """Temporaries left by a killed run in the folders this asset writes to."""
    for location, folder in stores:
        for path in remove_stale_temporaries(location.fs, location.path(folder), older_than):
            context.log.warning("removed %s, left behind by a killed run", location.display(path))


def _score_one(context, model, batch_path, data: Location, predictions: Location, day, dataset):
    """Score one file; its predictions, then its summary, then the move to processed/."""
    output = predictions.path(f"date={day}", prediction_name(batch_path))
    stats = score_file(
        model,
        batch_path,
        output,
        input_fs=data.fs,
        output_fs=predictions.fs,
        chunk_rows=dataset.scoring_chunk_rows,
        source=data.display(batch_path),
    )
    summary_path = predictions.path(f"date={day}", stats_name(batch_path))
    # From here on only storage can fail: a failure is retried, never blamed on the file.
    with storage_operation(f"recording {data.display(batch_path)} as scored"):
        processed = move_to(data, batch_path, processed_folder(dataset.processed_prefix, day))
        summary = {**stats.to_dict(), "input": data.display(processed),
                   "output": predictions.display(output)}
        write_json_atomic(predictions.fs, summary_path, summary)
    context.log.info("scored %s", summary)
    return summary


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=["production_model"],
    kinds={"xgboost", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    owners=catalog.OWNERS,
    tags=catalog.tags("scoring", "predictions"),
    code_version=catalog.code_version(__name__, "daily_predictions"),
    metadata=catalog.table(catalog.PREDICTIONS_SCHEMA),
    freshness_policy=freshness_policy("daily_predictions"),
    check_specs=[
        dg.AssetCheckSpec(
            BATCH_CHECK,
            asset="daily_predictions",
            description="Every batch file of the day passed validation (rejects are quarantined).",
        )
    ],
)
def daily_predictions(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    storage: FraudStorage,
    dataset: DatasetSettings,
    metrics: MetricsPusher,
) -> dg.MaterializeResult:
    """Fraud scores for the day's batch files (`incoming/YYYY-MM-DD*.csv|parquet`), one output
    file per input file, one row per transaction in input order: `transaction_id`,
    `fraud_probability`, `is_fraud` (at the model's threshold) and `model_version`.

    Files are read and scored in chunks, so memory does not grow with file size. A scored
    file moves to `processed/`; a file that fails validation moves to `quarantine/` with the
    reason beside it, and the day's other files are still scored. Files scored before (by
    the incoming-file sensor) are not scored again unless `rescore` is set.
    """
    day = context.partition_key
    data, predictions = storage.data(), storage.predictions()
    batch_files = list_batch_files(
        data, day, (dataset.incoming_prefix, processed_folder(dataset.processed_prefix, day))
    )
    chosen = set(config.files) if config.files is not None else None
    if chosen is not None:
        missing = chosen - {path.rsplit("/", 1)[-1] for path in batch_files}
        if missing:
            raise permanent_failure(f"batch files not found for {day}: {sorted(missing)}")
    if not batch_files:
        raise permanent_failure(
            f"no batch files for {day} under {data.url_of(dataset.incoming_prefix)}"
        )

    _remove_orphans(
        context,
        [(predictions, f"date={day}"), (data, dataset.quarantine_prefix)],
        dataset.stale_temporary_seconds,
    )
    started = time.perf_counter()
    model = None
    summaries, fresh, rejected = [], [], []
    clashes = name_clashes(batch_files, data.path(processed_folder(dataset.processed_prefix, day)))
    for batch_path in batch_files:
        name = batch_path.rsplit("/", 1)[-1]
        stats_path = predictions.path(f"date={day}", stats_name(batch_path))
        # Refused only once the other file holds the name (scored): if it was quarantined,
        # this one is scored in its place.
        if batch_path in clashes and (chosen is None or name in chosen) and predictions.fs.exists(
            stats_path
        ):
            keeper = clashes[batch_path].rsplit("/", 1)[-1]
            reason = (f"{data.display(batch_path)}: {keeper} of the same day has the same name "
                      "before its extension and their predictions would overwrite each other; "
                      "rename this file")
            moved = quarantine(data, batch_path, dataset.quarantine_prefix, reason)
            rejected.append({"file": data.display(batch_path), "quarantined_to": data.display(moved),
                             "reason": reason})
            context.log.error("rejected %s: %s", batch_path, reason)
            continue
        already_scored = predictions.fs.exists(stats_path)
        wanted = batch_path.rsplit("/", 1)[-1] in chosen if chosen is not None else (
            config.rescore or not already_scored
        )
        if not wanted:
            # Not scored this time, but still part of the day's totals.
            if already_scored:
                summaries.append(read_json(predictions.fs, stats_path))
            continue
        model = model or load_production_model(storage.registry())
        try:
            fresh.append(_score_one(context, model, batch_path, data, predictions, day, dataset))
        except Exception as error:
            if failure_kind(error) == "storage":
                # The file may be fine: fail the step (the retry policy tries again) and
                # leave the file where it is.
                raise
            # Anything else is this file's content, whatever raised it: quarantine it, never
            # retry it, and let the day's other files be scored.
            reason = _rejection_reason(error, data.display(batch_path))
            moved = quarantine(data, batch_path, dataset.quarantine_prefix, reason)
            rejected.append({"file": data.display(batch_path), "quarantined_to": data.display(moved),
                             "reason": reason})
            context.log.error("rejected %s: %s", batch_path, reason)
    summaries += fresh
    if not summaries:
        raise permanent_failure(
            f"every batch file for {day} was rejected",
            rejected=dg.MetadataValue.json(rejected),
        )

    rows = sum(s["rows"] for s in summaries)
    flagged = sum(s["flagged"] for s in summaries)
    seconds = time.perf_counter() - started
    versions = sorted({s["model_version"] for s in summaries})
    if fresh:
        metrics.scoring(
            rows=sum(s["rows"] for s in fresh),
            flagged=sum(s["flagged"] for s in fresh),
            seconds=seconds,
            model_version=model.version,
        )
    return dg.MaterializeResult(
        metadata={
            catalog.PARTITION_ROW_COUNT: rows,
            catalog.URI: catalog.uri(predictions, f"date={day}"),
            "rows": rows,
            "flagged": flagged,
            "flagged_rate": round(flagged / rows, 6) if rows else 0.0,
            "seconds": round(seconds, 3),
            "newly_scored_files": len(fresh),
            "model_version": ", ".join(versions),
            "files": dg.MetadataValue.json(summaries),
            "score_histogram": score_histogram_chart(predictions, day, summaries[-1]["threshold"]),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=BATCH_CHECK,
                passed=not rejected,
                severity=dg.AssetCheckSeverity.WARN,
                # Counts as numbers, so the UI plots them per day.
                metadata={
                    "rejected": dg.MetadataValue.json(rejected),
                    "rejected_files": dg.MetadataValue.int(len(rejected)),
                    "scored": dg.MetadataValue.int(len(summaries)),
                    "rejected_share": dg.MetadataValue.float(
                        round(len(rejected) / (len(rejected) + len(summaries)), 4)
                    ),
                },
            )
        ],
    )
