"""Scoring: each day's batch files scored with the production model."""

import time

import dagster as dg

from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.storage.locations import Location, remove_stale_temporaries
from fraud_assets.defs import catalog
from fraud_assets.defs.day_scoring import DayReport, DayScoring, scorer_for
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure
from fraud_assets.defs.freshness import freshness_policy
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.presentation import score_histogram_chart
from fraud_assets.defs.resources import DaskCluster, DatasetSettings, FraudStorage, MetricsPusher

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


def _remove_orphans(context, stores: list[tuple[Location, str]], older_than: int) -> None:
    """Temporaries left by a killed run in the folders this asset writes to."""
    for location, folder in stores:
        for path in remove_stale_temporaries(location.fs, location.path(folder), older_than):
            context.log.warning("removed %s, left behind by a killed run", location.display(path))


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    # A backfill from the UI is one run over its whole range: with a Dask scheduler its
    # files are spread over the workers at once, rather than a run (and a process) a day.
    backfill_policy=dg.BackfillPolicy.single_run(),
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
    dask: DaskCluster,
) -> dg.MaterializeResult:
    """Fraud scores for the day's batch files (`incoming/YYYY-MM-DD*.csv|parquet`), one output
    file per input file, one row per transaction in input order: `transaction_id`,
    `fraud_probability`, `is_fraud` (at the model's threshold) and `model_version`.

    Files are read and scored in chunks, so memory does not grow with file size. A scored
    file moves to `processed/`; a file that fails validation moves to `quarantine/` with the
    reason beside it, and the day's other files are still scored. Files scored before (by
    the incoming-file sensor) are not scored again unless `rescore` is set.

    A backfill scores its whole range in one run; with a Dask scheduler
    (`FRAUD_DASK_SCHEDULER`) the workers score the files side by side, each output the
    same as one process writes.
    """
    days = context.partition_keys
    data, predictions = storage.data(), storage.predictions()
    _remove_orphans(
        context,
        [*((predictions, f"date={day}") for day in days), (data, dataset.quarantine_prefix)],
        dataset.stale_temporary_seconds,
    )
    started = time.perf_counter()
    scoring = DayScoring(context, data=data, predictions=predictions, dataset=dataset, files=config.files,
                         rescore=config.rescore, load_model=lambda: load_production_model(storage.registry()))
    with scorer_for(scoring, dask) as scorer:
        reports = scoring.run(days, scorer)
    seconds = time.perf_counter() - started

    fresh = [summary for report in reports.values() for summary in report.fresh]
    if fresh:
        metrics.scoring(
            rows=sum(s["rows"] for s in fresh),
            flagged=sum(s["flagged"] for s in fresh),
            seconds=seconds,
            model_version=scoring.model.version,
        )
    every_file_rejected = [day for day, report in reports.items() if not report.summaries]
    rejected = [entry for report in reports.values() for entry in report.rejected]
    if every_file_rejected:
        if len(days) > 1:
            # The step's failure would leave the range's other days unmaterialised although
            # their files are scored and moved to processed/, so the catalog would show them
            # failed and downstream days (drift, shadow scores) would wait on them: they are
            # recorded before the run fails on the bad days.
            for day, report in reports.items():
                if report.summaries:
                    context.log_event(dg.AssetMaterialization(
                        asset_key=context.asset_key, partition=day,
                        metadata=_day_metadata(predictions, report, _scoring_seconds(report)),
                    ))
        raise permanent_failure(
            f"every batch file for {', '.join(every_file_rejected)} was rejected",
            rejected=dg.MetadataValue.json(rejected),
        )
    check = _batch_check(rejected, scored=sum(len(report.summaries) for report in reports.values()))
    if len(days) == 1:
        return dg.MaterializeResult(metadata=_day_metadata(predictions, reports[days[0]], seconds),
                                    check_results=[check])
    # One run for many days: each day's materialisation gets its own figures, its time being
    # the time its files took to score (side by side on a cluster).
    for day, report in reports.items():
        context.add_asset_metadata(_day_metadata(predictions, report, _scoring_seconds(report)), partition_key=day)
    summaries = [summary for report in reports.values() for summary in report.summaries.values()]
    return dg.MaterializeResult(
        metadata={
            "days": len(days),
            "rows_in_range": sum(s["rows"] for s in summaries),
            "newly_scored_files_in_range": len(fresh),
            "run_seconds": round(seconds, 3),
            "scored_on": "dask" if dask.configured else "this process",
        },
        check_results=[check],
    )


def _scoring_seconds(report: DayReport) -> float:
    return sum(summary["seconds"] for summary in report.fresh)


def _day_metadata(predictions: Location, report: DayReport, seconds: float) -> dict:
    summaries = report.ordered_summaries()
    rows = sum(s["rows"] for s in summaries)
    flagged = sum(s["flagged"] for s in summaries)
    return {
        catalog.PARTITION_ROW_COUNT: rows,
        catalog.URI: catalog.uri(predictions, f"date={report.day}"),
        "rows": rows,
        "flagged": flagged,
        "flagged_rate": round(flagged / rows, 6) if rows else 0.0,
        "seconds": round(seconds, 3),
        "newly_scored_files": len(report.fresh),
        "model_version": ", ".join(sorted({s["model_version"] for s in summaries})),
        "files": dg.MetadataValue.json(summaries),
        "score_histogram": score_histogram_chart(predictions, report.day, summaries[-1]["threshold"]),
    }


def _batch_check(rejected: list[dict], *, scored: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=BATCH_CHECK,
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        # Counts as numbers, so the UI plots them per day.
        metadata={
            "rejected": dg.MetadataValue.json(rejected),
            "rejected_files": dg.MetadataValue.int(len(rejected)),
            "scored": dg.MetadataValue.int(scored),
            "rejected_share": dg.MetadataValue.float(round(len(rejected) / (len(rejected) + scored), 4)),
        },
    )
