"""Blocking asset checks: bad data never trains a model, a weak model never serves."""

import dagster as dg
import pandas as pd

from fraud_assets.core.model import FraudModel
from fraud_assets.core.schema import LABEL, LABELLED_COLUMNS
from fraud_assets.defs.resources import FraudStorage, MetricsPusher, QualityGate, SlackAlerts


@dg.asset_check(asset="raw_transactions", blocking=True)
def raw_transactions_quality(
    raw_transactions: pd.DataFrame, quality_gate: QualityGate
) -> dg.AssetCheckResult:
    """Schema, nulls, label values and a plausible fraud prevalence."""
    problems = []
    missing = [c for c in LABELLED_COLUMNS if c not in raw_transactions.columns]
    if missing:
        problems.append(f"missing columns: {missing}")
    present = [c for c in LABELLED_COLUMNS if c in raw_transactions.columns]
    non_numeric = [c for c in present if not pd.api.types.is_numeric_dtype(raw_transactions[c])]
    if non_numeric:
        problems.append(f"non-numeric columns: {non_numeric}")
    nulls = {c: int(n) for c, n in raw_transactions[present].isna().sum().items() if n}
    if nulls:
        problems.append(f"null values: {nulls}")
    labels = set(raw_transactions[LABEL].dropna().unique().tolist()) if LABEL in present else set()
    if not labels <= {0, 1}:
        problems.append(f"labels other than 0/1: {sorted(labels - {0, 1})}")
    prevalence = float(raw_transactions[LABEL].mean()) if LABEL in present and len(raw_transactions) else 0.0
    if not quality_gate.min_prevalence <= prevalence <= quality_gate.max_prevalence:
        problems.append(
            f"fraud prevalence {prevalence:.5f} outside "
            f"[{quality_gate.min_prevalence}, {quality_gate.max_prevalence}]"
        )
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or "schema, nulls, labels and prevalence as expected",
        metadata={"rows": len(raw_transactions), "prevalence": round(prevalence, 6)},
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
            "candidate_auprc": gate.candidate_auprc,
            "production_version": gate.production_version or "none",
            **({"production_auprc": gate.production_auprc} if gate.production_auprc is not None else {}),
            "auprc_floor": gate.auprc_floor,
            "max_auprc_regression": gate.max_regression,
        },
    )
