"""Blocking asset checks: bad data never trains a model, a weak model never serves."""

import dagster as dg

from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.defs import catalog
from fraud_assets.defs.gate_evidence import scored_test_split
from fraud_assets.defs.io_managers import StoredTable
from fraud_assets.defs.resources import DaskCluster, FraudStorage, MetricsPusher, QualityGate, SlackAlerts


@dg.asset_check(asset="raw_transactions", blocking=True)
def raw_transactions_quality(
    context: dg.AssetCheckExecutionContext, quality_gate: QualityGate
) -> dg.AssetCheckResult:
    """A plausible fraud prevalence: what no single row can show. Columns, values and labels
    were validated row by row when the file was read (`raw_transactions` fails on any bad
    row), so they are not checked again here.

    Judged from the rows and frauds the materialisation counted as it read them, so the check
    reads no data (on a Dask cluster the rows never reach this process)."""
    metadata = _counted(context, dg.AssetKey("raw_transactions"))
    if catalog.ROW_COUNT not in metadata or catalog.FRAUDS not in metadata:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description="raw_transactions has no materialisation with its row and fraud counts")
    rows, frauds = int(metadata[catalog.ROW_COUNT].value), int(metadata[catalog.FRAUDS].value)
    prevalence = frauds / max(rows, 1)
    plausible = quality_gate.min_prevalence <= prevalence <= quality_gate.max_prevalence
    return dg.AssetCheckResult(
        passed=plausible,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"fraud prevalence {prevalence:.5f} "
        + ("within" if plausible else "outside")
        + f" [{quality_gate.min_prevalence}, {quality_gate.max_prevalence}]",
        metadata={"rows": dg.MetadataValue.int(rows), "prevalence": catalog.figure(prevalence, 6)},
    )


def _counted(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> dict:
    """The metadata of the materialisation this run made, or of the latest one when the check
    runs on its own: never another run's that landed in between."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    mine = [r.event_log_entry for r in records if r.event_log_entry.dagster_event.asset_key == key]
    entry = mine[-1] if mine else context.instance.get_latest_materialization_event(key)
    return dict(entry.asset_materialization.metadata) if entry and entry.asset_materialization else {}


@dg.asset_check(
    asset="fraud_model",
    blocking=True,
    additional_ins={"test_split": dg.AssetIn("test_split", input_manager_key="stored_table_loader")},
)
def fraud_model_quality_gate(
    context: dg.AssetCheckExecutionContext,
    fraud_model: FraudModel,
    test_split: StoredTable,
    storage: FraudStorage,
    quality_gate: QualityGate,
    metrics: MetricsPusher,
    slack: SlackAlerts,
    dask: DaskCluster,
) -> dg.AssetCheckResult:
    """Test-split AUPRC at least the configured floor, and not worse than the production model
    by more than the configured margin. A failure keeps the current production model."""
    production = storage.registry().load_production()
    scores, _ = scored_test_split(test_split, fraud_model, production, dask)
    gate = quality_gate.evaluate(fraud_model, production, scores)
    if not gate.passed:
        context.log.error(gate.describe())
        slack.post(f":no_entry: Retrained model not promoted, production stays on "
                   f"{gate.production_version or 'none'}. {gate.describe()}")
        metrics.training_outcome(fraud_model, gate)
    return dg.AssetCheckResult(
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate.describe(),
        metadata={
            "candidate_version": gate.candidate_version,
            "candidate_auprc": catalog.figure(gate.candidate_auprc),
            "production_version": gate.production_version or "none",
            **(
                {"production_auprc": catalog.figure(gate.production_auprc)}
                if gate.production_auprc is not None else {}
            ),
            "auprc_floor": catalog.figure(gate.auprc_floor),
            "max_auprc_regression": catalog.figure(gate.max_regression),
            **(
                {"candidate_calibration_error": catalog.figure(gate.candidate_calibration_error),
                 "max_calibration_error": catalog.figure(gate.max_calibration_error)}
                if gate.candidate_calibration_error is not None else {}
            ),
        },
    )
