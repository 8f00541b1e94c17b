"""Monitoring: daily drift of features and scores against the model's training reference."""

import time

import dagster as dg
import pyarrow.parquet as pq

from fraud_assets.core.data import profile
from fraud_assets.core.data.feature_chunks import iter_feature_chunks
from fraud_assets.core.data.schema import FEATURE_COLUMNS
from fraud_assets.core.monitoring import drift
from fraud_assets.defs import catalog
from fraud_assets.defs.automation import RECENT_LOOKBACK, after_inputs_update
from fraud_assets.defs.batches import list_batch_files, prediction_name, processed_folder
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure
from fraud_assets.defs.freshness import freshness_policy
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.presentation import drift_chart, markdown_table
from fraud_assets.defs.resources import (
    DatasetSettings,
    DriftSettings,
    FraudStorage,
    MetricsPusher,
    SlackAlerts,
)

_FEATURE_INDEX = {name: FEATURE_COLUMNS.index(name) for name in profile.DRIFT_FEATURES}

GROUP = "monitoring"
DRIFT_CHECK = "drift_within_bounds"


def _prediction_scores(predictions, path: str):
    with predictions.fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        version = (parquet.schema_arrow.metadata or {}).get(b"model_version", b"").decode()
        for batch in parquet.iter_batches(columns=["fraud_probability"]):
            yield version, batch.column(0).to_numpy()


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=["daily_predictions"],
    kinds={"json"},
    retry_policy=TRANSIENT_RETRY,
    automation_condition=after_inputs_update(RECENT_LOOKBACK),
    owners=catalog.OWNERS,
    tags=catalog.tags("monitoring", "drift"),
    code_version=catalog.code_version(__name__, "drift_statistics"),
    freshness_policy=freshness_policy("drift_statistics"),
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="drift_statistics",
            description="The day's drift verdict: warns on moderate drift, fails on major drift "
            "(see fraud_assets/core/monitoring/verdict.py). Plots drift share, largest PSI and "
            "score PSI per day.",
            partitions_def=daily_partitions,
        )
    ],
)
def drift_statistics(
    context: dg.AssetExecutionContext,
    storage: FraudStorage,
    dataset: DatasetSettings,
    drift_settings: DriftSettings,
    metrics: MetricsPusher,
    slack: SlackAlerts,
):
    """Per feature (V1..V28, Amount, and the model score): PSI over the reference deciles and
    the Wasserstein distance in reference standard deviations, against the training data of the
    model that scored the day; plus a dataset verdict from the share of drifted features."""
    started = time.perf_counter()
    day = context.partition_key
    data, predictions = storage.data(), storage.predictions()
    batch_files = list_batch_files(
        data, day, (dataset.incoming_prefix, processed_folder(dataset.processed_prefix, day))
    )
    scored = [
        (path, predictions.path(f"date={day}", prediction_name(path)))
        for path in batch_files
        if predictions.fs.exists(predictions.path(f"date={day}", prediction_name(path)))
    ]
    if not scored:
        raise permanent_failure(f"no scored batch files for {day}: run daily_predictions first")

    versions = set()
    accumulator: drift.DriftAccumulator | None = None
    manifest: dict = {}
    for batch_path, predictions_path in scored:
        for version, scores in _prediction_scores(predictions, predictions_path):
            if accumulator is None:
                manifest = storage.registry().manifest(version)
                accumulator = drift.DriftAccumulator(profile.reference_from_dict(manifest["drift_reference"]))
            versions.add(version)
            accumulator.add({profile.SCORE: scores})
        # The scoring reader: the file passed validation when it was scored, and this path
        # skips pandas (about 4 times faster than reading it into DataFrames).
        for chunk in iter_feature_chunks(batch_path, fs=data.fs, source=data.display(batch_path)):
            accumulator.add(
                {name: chunk.features[:, _FEATURE_INDEX[name]] for name in profile.DRIFT_FEATURES}
            )

    report = accumulator.report(drift_settings.thresholds(), manifest.get("feature_importance"))
    report.update({"date": day, "model_versions": sorted(versions)})
    seconds = time.perf_counter() - started
    features = report["features"]
    metrics.drift(
        psi={name: stats["psi"] for name, stats in features.items()},
        wasserstein={name: stats["wasserstein_scaled"] for name, stats in features.items()},
        drift_share=report["drift_share"],
        drift_detected=report["drift_detected"],
        seconds=seconds,
    )
    if report["drift_level"] == "major":
        slack.post(
            f":warning: Major drift on {day}: {'; '.join(report['reasons'])}. "
            f"Most drifted: {', '.join(report['drifted_features'][:5]) or 'none'}"
        )
    most_drifted = sorted(features.items(), key=lambda item: -item[1]["psi"])[:8]
    level = report["drift_level"]
    return dg.MaterializeResult(
        value=report,
        metadata={
            "drift_detected": report["drift_detected"],
            "drift_level": level,
            "drift_share": round(float(report["drift_share"]), 4),
            "rows": report["rows"],
            "seconds": round(seconds, 3),
            "most_drifted_features": markdown_table(
                ["feature", "PSI", "Wasserstein / std", "KS p-value", "level"],
                [
                    (name, stats["psi"], stats["wasserstein_scaled"], stats["p_value"], stats["level"])
                    for name, stats in most_drifted
                ],
            ),
            "drift_chart": drift_chart(report),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=DRIFT_CHECK,
                passed=level == "none",
                severity=dg.AssetCheckSeverity.ERROR if level == "major" else dg.AssetCheckSeverity.WARN,
                description=f"{day}: {level} drift" + (f" ({'; '.join(report['reasons'])})" if report["reasons"] else ""),
                # Numbers (floats, not text) so the UI plots them across partitions.
                metadata={
                    "drift_level": level,
                    "drift_share": catalog.figure(report["drift_share"]),
                    "largest_psi": catalog.figure(report["largest_psi"]),
                    "score_psi": catalog.figure(report["score_psi"] or 0.0),
                    "drifted_features": dg.MetadataValue.json(report["drifted_features"]),
                },
            )
        ],
    )
