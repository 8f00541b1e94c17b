"""Champion and challenger: the challenger scored in shadow, and the decision on evidence."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

from fraud_assets import settings
from fraud_assets.core.data.labels import BATCH_FILE, TRANSACTION_ID, with_labels
from fraud_assets.core.model.scoring import score_file
from fraud_assets.core.monitoring.challenger import PROMOTE, RETIRE, SideBySide, decide
from fraud_assets.core.monitoring.performance import is_mature
from fraud_assets.core.storage.locations import read_json, write_json_atomic
from fraud_assets.defs import catalog
from fraud_assets.defs.assets.training import serving_uri
from fraud_assets.defs.automation import RECENT_LOOKBACK, after_inputs_update, after_upstream
from fraud_assets.defs.batches import prediction_name, stats_name
from fraud_assets.defs.day_data import day_batch_files, read_day_labels, read_predictions
from fraud_assets.defs.errors import TRANSIENT_RETRY
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.resources import DatasetSettings, FraudStorage, SlackAlerts

GROUP = "challenger"


@dg.asset(
    group_name=GROUP,
    owners=catalog.OWNERS,
    partitions_def=daily_partitions,
    deps=["daily_predictions", "challenger_model"],
    kinds={"xgboost", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    automation_condition=after_inputs_update(RECENT_LOOKBACK),
    tags=catalog.tags("scoring", "challenger"),
    code_version=catalog.code_version(__name__, "challenger_predictions"),
    metadata=catalog.table(catalog.PREDICTIONS_SCHEMA),
)
def challenger_predictions(
    context: dg.AssetExecutionContext, storage: FraudStorage, dataset: DatasetSettings
) -> dg.MaterializeResult:
    """The challenger's shadow scores of the day's batch files: the same files in the same row
    order as `daily_predictions`, written under `challenger_predictions/date=YYYY-MM-DD/`.
    Never read by anything that serves; nothing to do while no challenge runs."""
    day = context.partition_key
    registry = storage.registry()
    model = registry.load_challenger()
    if model is None:
        return dg.MaterializeResult(metadata={"challenger": "none", "newly_scored_files": 0})
    data, shadow = storage.data(), storage.challenger_predictions()
    scored, rows, day_rows = 0, 0, 0
    for batch_path in day_batch_files(storage, dataset, day):
        stats_path = shadow.path(f"date={day}", stats_name(batch_path))
        if shadow.fs.exists(stats_path):
            before = read_json(shadow.fs, stats_path)
            if before["model_version"] == model.version:
                day_rows += before["rows"]
                continue
        output = shadow.path(f"date={day}", prediction_name(batch_path))
        stats = score_file(model, batch_path, output, input_fs=data.fs, output_fs=shadow.fs,
                           chunk_rows=dataset.scoring_chunk_rows, source=data.display(batch_path))
        write_json_atomic(shadow.fs, stats_path, stats.to_dict())
        scored += 1
        rows += stats.rows
        day_rows += stats.rows
    return dg.MaterializeResult(
        metadata={
            "challenger": model.version,
            "newly_scored_files": scored,
            "newly_scored_rows": rows,
            catalog.PARTITION_ROW_COUNT: day_rows,
            catalog.URI: catalog.uri(shadow, f"date={day}"),
        }
    )


def side_by_side(storage: FraudStorage, days: list[str]) -> tuple[SideBySide, list[str]]:
    """Shared rows of the given days: transactions both models scored, with their labels."""
    parts, used = [], []
    production_threshold = challenger_threshold = None
    registry = storage.registry()
    for day in days:
        production = read_predictions(storage.predictions(), day)
        shadow = read_predictions(storage.challenger_predictions(), day)
        if production.empty or shadow.empty:
            continue
        shared = production.merge(shadow, on=[BATCH_FILE, TRANSACTION_ID], suffixes=("_p", "_c"))
        if shared.empty:
            continue
        shared["label"] = with_labels(shared, read_day_labels(storage, day))
        shared["day"] = day
        production_threshold = registry.manifest(shared["model_version_p"].iloc[0])["threshold"]
        challenger_threshold = registry.manifest(shared["model_version_c"].iloc[0])["threshold"]
        parts.append(shared)
        used.append(day)
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"day": [], "label": [], "fraud_probability_p": [], "fraud_probability_c": []}
    )
    evidence = SideBySide(
        days=frame["day"].to_numpy(),
        labels=frame["label"].to_numpy(dtype=np.int8),
        production_scores=frame["fraud_probability_p"].to_numpy(dtype=np.float64),
        challenger_scores=frame["fraud_probability_c"].to_numpy(dtype=np.float64),
        production_threshold=float(production_threshold or 0.5),
        challenger_threshold=float(challenger_threshold or 0.5),
    )
    return evidence, used


def mature_days_since(since: str, today: dt.date, maturity: int) -> list[str]:
    start = dt.date.fromisoformat(since[:10])
    days = []
    day = start
    while is_mature(day.isoformat(), today, maturity):
        if daily_partitions.has_partition_key(day.isoformat()):
            days.append(day.isoformat())
        day += dt.timedelta(days=1)
    return days


@dg.asset(
    group_name=GROUP,
    owners=catalog.OWNERS,
    deps=["realized_performance"],
    kinds={"json"},
    automation_condition=after_upstream(),
    tags=catalog.tags("deployment", "challenger"),
    code_version=catalog.code_version(__name__, "challenger_evaluation"),
)
def challenger_evaluation(
    context: dg.AssetExecutionContext, storage: FraudStorage, slack: SlackAlerts
) -> dg.MaterializeResult:
    """Promotes the challenger or retires it once the evidence is in: at least
    `FRAUD_CHALLENGER_MIN_DAYS` mature days and `FRAUD_CHALLENGER_MIN_FRAUDS` frauds scored by
    both models. Promoted when its realised AUPRC beats production's by
    `FRAUD_PROMOTION_MARGIN` with a paired bootstrap p-value under `FRAUD_PROMOTION_ALPHA`
    and its realised cost is not higher; retired otherwise. Both outcomes are recorded in the
    registry with the figures behind them and posted to Slack."""
    registry = storage.registry()
    record = registry.challenger_record() or {}
    challenger, production = record.get("version"), registry.production_version()
    # Where each decision is recorded, with its figures.
    where = {catalog.URI: serving_uri(registry, "challenger_model")}
    if not challenger or not production:
        return dg.MaterializeResult(metadata={"outcome": "no challenge running", **where})
    today = settings.today()
    # Judged only on days it never trained on, from the day its challenge started.
    first = record.get("since") or today.isoformat()
    if record.get("trained_through"):
        after_training = dt.date.fromisoformat(record["trained_through"]) + dt.timedelta(days=1)
        first = max(first[:10], after_training.isoformat())
    days = mature_days_since(first, today, settings.label_maturity_days())
    evidence, used = side_by_side(storage, days)
    decision = decide(evidence, settings.promotion_policy())
    context.log.info("%s vs %s: %s", challenger, production, decision.reason)
    figures = {k: v for k, v in decision.to_dict().items() if k not in ("outcome", "reason")}
    if decision.outcome == PROMOTE:
        registry.promote(challenger, reason=f"challenger promoted on realised labels: {decision.reason}",
                         figures=figures)
        slack.post(f":trophy: Challenger {challenger} promoted over {production}. {decision.reason}")
    elif decision.outcome == RETIRE:
        registry.end_challenge("retired", reason=decision.reason, figures=figures)
        slack.post(f":wastebasket: Challenger {challenger} retired; {production} keeps serving. "
                   f"{decision.reason}")
    metadata = {
        "outcome": decision.outcome,
        "challenger": challenger,
        "production": production,
        "reason": decision.reason,
        "mature_days": dg.MetadataValue.json(used),
        "frauds": decision.frauds,
        "rows": decision.rows,
        **where,
    }
    for key in ("production_auprc", "challenger_auprc", "auprc_difference", "p_value_not_better",
                "production_cost", "challenger_cost"):
        if figures.get(key) is not None:
            metadata[key] = catalog.figure(figures[key])
    return dg.MaterializeResult(metadata=metadata)
