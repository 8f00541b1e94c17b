"""Scoring: each day's batch files scored with the production model."""


import time

import dagster as dg

from fraud_assets.core.registry import ModelRegistry
from fraud_assets.core.schema import DataValidationError
from fraud_assets.core.scoring import ScoringStats, score_file
from fraud_assets.defs.batches import list_batch_files, prediction_name, quarantine
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.resources import DatasetSettings, FraudStorage, MetricsPusher

GROUP = "scoring"
SCORING_TAGS = {"fraud/job": "scoring"}


class ScoringConfig(dg.Config):
    files: list[str] | None = None
    """Score only these batch file names (the incoming-file sensor sets this); default: all of
    the day's files."""


def load_production_model(registry: ModelRegistry):
    model = registry.load_production()
    if model is None:
        raise dg.Failure(
            description=f"no production model in {registry.location.url_of()}: "
            "materialise the training assets (or `fraud model promote VERSION`) first"
        )
    return model


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=["production_model"],
    kinds={"xgboost", "parquet"},
    op_tags=SCORING_TAGS,
    check_specs=[
        dg.AssetCheckSpec(
            "batch_files_valid",
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

    Files are read and scored in chunks, so memory does not grow with file size.
    """
    day = context.partition_key
    data, predictions = storage.data(), storage.predictions()
    batch_files = list_batch_files(
        data, day, (dataset.incoming_prefix, dataset.processed_prefix)
    )
    if config.files is not None:
        wanted = set(config.files)
        batch_files = [p for p in batch_files if p.rsplit("/", 1)[-1] in wanted]
    if not batch_files:
        raise dg.Failure(
            description=f"no batch files for {day} under {data.url_of(dataset.incoming_prefix)}"
        )
    model = load_production_model(storage.registry())

    started = time.perf_counter()
    per_file: list[tuple[str, str, ScoringStats]] = []
    rejected: list[dict] = []
    for batch_path in batch_files:
        output = predictions.path(f"date={day}", prediction_name(batch_path))
        try:
            stats = score_file(
                model,
                batch_path,
                output,
                input_fs=data.fs,
                output_fs=predictions.fs,
                chunk_rows=dataset.scoring_chunk_rows,
                source=data.display(batch_path),
            )
        except DataValidationError as error:
            # One bad file must not hold back the day's other files: set it aside with
            # the reason and carry on; the check below makes the rejection visible.
            moved = quarantine(data, batch_path, dataset.quarantine_prefix, str(error))
            rejected.append({"file": data.display(batch_path), "quarantined_to": data.display(moved), "reason": str(error)})
            context.log.error("rejected %s: %s", batch_path, error)
            continue
        per_file.append((batch_path, output, stats))
        context.log.info("scored %s: %s", batch_path, stats.to_dict())
    if not per_file:
        raise dg.Failure(
            description=f"every batch file for {day} was rejected",
            metadata={"rejected": dg.MetadataValue.json(rejected)},
        )

    rows = sum(s.rows for _, _, s in per_file)
    flagged = sum(s.flagged for _, _, s in per_file)
    seconds = time.perf_counter() - started
    metrics.scoring(rows=rows, flagged=flagged, seconds=seconds, model_version=model.version)
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="batch_files_valid",
                passed=not rejected,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rejected": dg.MetadataValue.json(rejected), "scored": len(per_file)},
            )
        ],
        metadata={
            "dagster/row_count": rows,
            "rows": rows,
            "flagged": flagged,
            "flagged_rate": round(flagged / rows, 6) if rows else 0.0,
            "seconds": round(seconds, 3),
            "model_version": model.version,
            "threshold": model.threshold,
            "files": dg.MetadataValue.json(
                [
                    {
                        "input": data.display(b),
                        "output": predictions.display(o),
                        **s.to_dict(),
                    }
                    for b, o, s in per_file
                ]
            ),
        }
    )
