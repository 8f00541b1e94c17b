"""Champion and challenger: the challenger scored in shadow, and the decision on evidence."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg
import numpy as np
import pandas as pd

from fraud_assets import settings
from fraud_assets.core.data.labels import BATCH_FILE, TRANSACTION_ID, with_labels
from fraud_assets.core.model.file_outcomes import FileOutcome
from fraud_assets.core.monitoring.challenger import PROMOTE, RETIRE, SideBySide, decide
from fraud_assets.core.monitoring.performance import is_mature
from fraud_assets.core.storage.locations import read_json, write_json_atomic
from fraud_assets.defs import catalog
from fraud_assets.defs.assets.training import serving_uri
from fraud_assets.defs.automation import RECENT_LOOKBACK, after_inputs_update, after_upstream
from fraud_assets.defs.batches import prediction_name, stats_name
from fraud_assets.defs.day_data import day_batch_files, read_day_labels, read_predictions
from fraud_assets.defs.day_scoring import pair_scorer
from fraud_assets.defs.errors import TRANSIENT_RETRY, permanent_failure
from fraud_assets.defs.partitions import daily_partitions
from fraud_assets.defs.resources import DaskCluster, DatasetSettings, FraudStorage, SlackAlerts

GROUP = "challenger"


@dg.asset(
    group_name=GROUP,
    owners=catalog.OWNERS,
    partitions_def=daily_partitions,
    # A backfill of the shadow scores is one run over its range, spread over the Dask
    # workers when a scheduler is configured, as daily_predictions' backfills are.
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["daily_predictions", "challenger_model"],
    kinds={"xgboost", "parquet"},
    retry_policy=TRANSIENT_RETRY,
    automation_condition=after_inputs_update(RECENT_LOOKBACK),
    tags=catalog.tags("scoring", "challenger"),
    code_version=catalog.code_version(__name__, "challenger_predictions"),
    metadata=catalog.table(catalog.PREDICTIONS_SCHEMA),
)
def challenger_predictions(
    context: dg.AssetExecutionContext, storage: FraudStorage, dataset: DatasetSettings, dask: DaskCluster
) -> dg.MaterializeResult:
    """The challenger's shadow scores of the day's batch files: the same files in the same row
    order as `daily_predictions`, written under `challenger_predictions/date=YYYY-MM-DD/`.
    Never read by anything that serves; nothing to do while no challenge runs.

    A backfill scores its whole range in one run; with a Dask scheduler
    (`FRAUD_DASK_SCHEDULER`) the workers score the files side by side. A file still in
    `incoming/` that the challenger cannot read is left for `daily_predictions` to quarantine
    and named in the day's metadata; one in `processed/` passed production's validation, so
    the challenger's failure on it fails the run (once the other files are recorded)."""
    days = context.partition_keys
    model = storage.registry().load_challenger()
    if model is None:
        return _shadow_result(context, {day: {"challenger": "none", "newly_scored_files": 0} for day in days})
    shadow = storage.challenger_predictions()
    tallies = {day: _ShadowDay() for day in days}
    to_score = []
    for day in days:
        for batch_path in day_batch_files(storage, dataset, day):
            stats_path = shadow.path(f"date={day}", stats_name(batch_path))
            before = read_json(shadow.fs, stats_path) if shadow.fs.exists(stats_path) else None
            if before is not None and before["model_version"] == model.version:
                tallies[day].rows += before["rows"]
            else:
                to_score.append(_ShadowFile(day, batch_path, shadow.path(f"date={day}", prediction_name(batch_path)),
                                            stats_path))
    incoming = storage.data().path(dataset.incoming_prefix) + "/"
    failed_on_validated, failed_days = [], set()
    for file, outcome in _shadow_outcomes(context, storage, dataset, dask, model, to_score):
        tally = tallies[file.day]
        if outcome.rejection is not None:
            if not file.batch_path.startswith(incoming):
                failed_on_validated.append(outcome.rejection)
                failed_days.add(file.day)
            context.log.warning("the challenger could not score %s: %s", file.batch_path, outcome.rejection)
            tally.rejected.append(outcome.rejection)
            continue
        write_json_atomic(shadow.fs, file.stats_path, outcome.stats.to_dict())
        tally.scored += 1
        tally.scored_rows += outcome.stats.rows
        tally.rows += outcome.stats.rows
    scored_on = "dask" if dask.configured else "this process"

    def figures(day: str, tally: _ShadowDay) -> dict:
        return {
            "scored_on": scored_on,
            "challenger": model.version,
            "newly_scored_files": tally.scored,
            "newly_scored_rows": tally.scored_rows,
            catalog.PARTITION_ROW_COUNT: tally.rows,
            catalog.URI: catalog.uri(shadow, f"date={day}"),
            **({"unreadable_files": dg.MetadataValue.json(tally.rejected)} if tally.rejected else {}),
        }

    if failed_on_validated:
        if len(days) > 1:
            # As in daily_predictions: the range's days the challenger scored in full are
            # recorded before the run fails on the others.
            for day in sorted(set(days) - failed_days):
                context.log_event(dg.AssetMaterialization(asset_key=context.asset_key, partition=day,
                                                          metadata=figures(day, tallies[day])))
        raise permanent_failure(
            f"challenger {model.version} failed on {len(failed_on_validated)} file(s) that production "
            f"validated and scored: {failed_on_validated[0]}",
            failures=dg.MetadataValue.json(failed_on_validated),
        )
    return _shadow_result(context, {day: figures(day, tally) for day, tally in tallies.items()})


@dataclass
class _ShadowDay:
    rows: int = 0
    scored: int = 0
    scored_rows: int = 0
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _ShadowFile:
    day: str
    batch_path: str
    output_path: str
    stats_path: str


def _shadow_outcomes(context, storage: FraudStorage, dataset: DatasetSettings, dask: DaskCluster,
                     model, files: list[_ShadowFile]) -> Iterator[tuple[_ShadowFile, FileOutcome]]:
    """Each file with its outcome as it finishes, scored as production's files are."""
    if not files:
        return
    with pair_scorer(storage.data(), storage.challenger_predictions(), dataset.scoring_chunk_rows, dask,
                     context.log) as score_pairs:
        for index, outcome in score_pairs(model, [(file.batch_path, file.output_path) for file in files]):
            yield files[index], outcome


def _shadow_result(context: dg.AssetExecutionContext, by_day: dict[str, dict]) -> dg.MaterializeResult:
    if len(by_day) == 1:
        return dg.MaterializeResult(metadata=next(iter(by_day.values())))
    # One run for many days: each day's materialisation gets its own figures and only those,
    # so a day reads the same however it was run.
    for day, metadata in by_day.items():
        context.add_asset_metadata(metadata, partition_key=day)
    return dg.MaterializeResult()


def side_by_side(storage: FraudStorage, days: list[str], challenger: str) -> tuple[SideBySide, list[str]]:
    """Shared rows of the given days: transactions both models scored, with their labels.
    Only ``challenger``'s shadow scores count: an earlier challenger's may still lie where a
    file has not been shadow-scored again."""
    parts, used = [], []
    production_threshold = challenger_threshold = None
    registry = storage.registry()
    for day in days:
        production = read_predictions(storage.predictions(), day)
        shadow = read_predictions(storage.challenger_predictions(), day)
        if not shadow.empty:
            shadow = shadow[shadow["model_version"] == challenger]
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
    evidence, used = side_by_side(storage, days, challenger)
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
