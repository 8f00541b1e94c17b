"""Blocking asset checks: bad data never trains a model, a weak model never serves."""

import dagster as dg
import pandas as pd

from fraud_assets.core.data.schema import LABEL
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.defs import catalog
from fraud_assets.defs.resources import FraudStorage, MetricsPusher, QualityGate, SlackAlerts


@dg.asset_check(asset="raw_transactions", blocking=True)
def raw_transactions_quality(
    raw_transactions: pd.DataFrame, quality_gate: QualityGate
) -> dg.AssetCheckResult:
    """A plausible fraud prevalence: what no single row can show. Columns, values and labels
    were validated row by row when the file was read (`raw_transactions` fails on any bad
    row), so they are not checked again here."""
    prevalence = float(raw_transactions[LABEL].mean())
    plausible = quality_gate.min_prevalence <= prevalence <= quality_gate.max_prevalence
    return dg.AssetCheckResult(
        passed=plausible,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"fraud prevalence {prevalence:.5f} "
        + ("within" if plausible else "outside")
        + f" [{quality_gate.min_prevalence}, {quality_gate.max_prevalence}]",
        metadata={"rows": dg.MetadataValue.int(len(raw_transactions)), "prevalence": catalog.figure(prevalence, 6)},
    )


@dg.asset_check(
    asset="fraud_model",
    blocking=True,
    additional_ins={"test_split": dg.AssetIn("test_split")},
)
def fraud_model_quality_gate(
    context: dg.AssetCheckExecutionContext,
    fraud_model: FraudModel,
    test_split: pd.DataFrame,
    storage: FraudStorage,
    quality_gate: QualityGate,
    metrics: MetricsPusher,
    slack: SlackAlerts,
) -> dg.AssetCheckResult:
    """Test-split AUPRC at least the configured floor, and not worse than the production model
    by more than the configured margin. A failure keeps the current production model."""
    production = storage.registry().load_production()
    gate = quality_gate.evaluate(fraud_model, production, test_split)
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
