"""Training on a Dask cluster with the single-process policy: same parameters, weighting,
early stopping on validation, threshold and bundle (:mod:`fraud_assets.core.model.training`);
the workers stream their rows through XGBoost's external memory (:mod:`.external_memory`).

What reaches this process: per-partition sums (preprocessing, counts, fingerprints), the
booster, the validation and test rows as counts per label and score bin (for the calibration,
the threshold and the metrics; a few megabytes however many rows) and a sample of training rows
for the drift reference.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client

from fraud_assets.core.cluster.client import added_up
from fraud_assets.core.cluster.datasets import require_both_classes
from fraud_assets.core.cluster.external_memory import Boosting, train_streaming
from fraud_assets.core.cluster.scoring import portable_model
from fraud_assets.core.cluster.splits import SPLIT, TEST, TRAIN, VALIDATION, plan_splits, with_splits
from fraud_assets.core.cluster.tables import check_tables_on_workers, labelled_frame
from fraud_assets.core.data import profile
from fraud_assets.core.data.features import (
    STANDARDISED_FEATURES,
    Preprocessor,
    preprocessor_from_moments,
    unscaled_features,
)
from fraud_assets.core.data.inputs import TableSet
from fraud_assets.core.data.schema import FEATURE_COLUMNS, LABEL, TIME, feature_matrix
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.manifest import HeldOutEvidence, complete_model
from fraud_assets.core.model.provenance import data_fingerprint, partitioned_provenance
from fraud_assets.core.model.scored_rows import (
    CALIBRATION_FOLDS,
    COUNT_COLUMNS,
    ScoreCounts,
    ScoredRows,
    content_folds,
    count_scores,
)
from fraud_assets.core.model.training import (
    TrainingConfig,
    booster_params,
    daily_volume,
    positive_weight,
    refit_report,
    require_frauds,
    search_on_rows,
    stopped_at_best,
    untuned_model,
)

log = logging.getLogger(__name__)

# Training rows profiled for the drift reference: its quantile grid has 1,001 points, which a
# sample of this size pins down well, and it is all this process holds of the training data.
DRIFT_SAMPLE_ROWS = 200_000
_PARTS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
_N = len(STANDARDISED_FEATURES)
# Train and validation rows the search's trials train on, drawn at random by the workers and
# searched by one of them: at ULB size (284,807 rows, the size the default budget was measured
# at) the whole of it, beyond that a sample of that size.
SEARCH_SAMPLE_ROWS = 300_000
# XGBoost's own distributed engine (its collective, as xgboost.dask uses) on external memory.
ENGINE = "xgboost-external-memory-on-dask"


def train_on_cluster(
    client: Client,
    tables: TableSet,
    config: TrainingConfig | None = None,
    *,
    split_strategy: str = "time",
    run_id: str | None = None,
) -> FraudModel:
    """Train on ``tables``, split on the cluster by ``split_strategy``."""
    config = config or TrainingConfig()
    started = time.perf_counter()
    check_tables_on_workers(client, tables)
    labelled = labelled_frame(tables)
    frame = with_splits(labelled, plan_splits(labelled, split_strategy, config.seed))
    return _train_split_frame(client, frame, config, tables.spec, started=started, run_id=run_id,
                              split_strategy=split_strategy)


def train_split_tables_on_cluster(
    client: Client,
    parts: dict[str, TableSet],
    config: TrainingConfig | None = None,
    *,
    preprocessor: Preprocessor | None = None,
    run_id: str | None = None,
    validated: bool = False,
) -> FraudModel:
    """Train on tables already split (``parts`` maps train, validation and test to them), e.g.
    the stored splits of the Dagster graph; ``preprocessor``, when given, is used as fitted.
    ``validated``: the tables were validated as they were written (the graph's own splits),
    so the workers do not read them once more only to check them."""
    config = config or TrainingConfig()
    started = time.perf_counter()
    frames = []
    for name, code in _PARTS.items():
        if not validated:
            check_tables_on_workers(client, parts[name])
        frames.append(labelled_frame(parts[name]).assign(**{SPLIT: np.int8(code)}))
    frame = dd.concat(frames, ignore_index=True)
    source = ", ".join(parts[name].spec for name in _PARTS)
    return _train_split_frame(client, frame, config, source, started=started, run_id=run_id,
                              split_strategy="stored", preprocessor=preprocessor)


def _train_split_frame(
    client: Client,
    frame: dd.DataFrame,
    config: TrainingConfig,
    source: str,
    *,
    started: float,
    run_id: str | None,
    split_strategy: str,
    preprocessor: Preprocessor | None = None,
) -> FraudModel:
    summary = _summarise(frame)
    require_both_classes(summary["counts"], source)
    counts = summary["counts"]
    require_frauds(counts["train"]["frauds"], counts["validation"]["frauds"])
    train_rows, train_frauds = counts["train"]["rows"], counts["train"]["frauds"]
    weight = positive_weight(config, train_rows - train_frauds, train_frauds)
    if preprocessor is None:
        preprocessor = preprocessor_from_moments(train_rows, summary["sums"], summary["squares"])
    search = None
    if config.search_budget_seconds > 0 and config.search_trials > 1:
        config, search = _search_on_a_sample(client, frame, preprocessor, config, counts)
        weight = positive_weight(config, train_rows - train_frauds, train_frauds)
    log.info("training on the cluster: %d rows (%d frauds), stopping on %d validation rows; "
             "positive weight %.1f", train_rows, train_frauds,
             counts["validation"]["rows"], weight)

    trained = train_streaming(client, frame, preprocessor, Boosting(
        params=booster_params(config, weight), rounds=config.n_estimators,
        early_stopping_rounds=config.early_stopping_rounds, refit_on_validation=config.refit_on_validation))
    for booster in (trained.early_stopped, trained.refitted):
        if booster is not None:
            booster.feature_names = list(preprocessor.feature_names)
    stopped = stopped_at_best(trained.early_stopped, weight, started)
    created = datetime.now(UTC)
    early = untuned_model(stopped, preprocessor, created)
    refit = None
    if trained.refitted is not None:
        stopped = dataclasses.replace(stopped, booster=trained.refitted,
                                      training_seconds=time.perf_counter() - started)
        refit = refit_report(counts, stopped)
    model = untuned_model(stopped, preprocessor, created) if refit else early
    validation, test = _held_out_scores(client, frame, early, model)
    evidence = HeldOutEvidence(
        validation=validation, test=test,
        rows_per_day=daily_volume(summary["rows"], summary["first_time"], summary["last_time"]),
        split_counts=counts,
        drift_columns=_drift_sample(frame, train_rows, config.seed),
        refitted_on_validation=refit is not None,
    )
    return complete_model(
        model, stopped, config, evidence,
        provenance_document=partitioned_provenance(summary["fingerprints"], summary["rows"], run_id=run_id),
        created=created,
        extra_training={"engine": ENGINE, "workers": trained.workers,
                        "split_strategy": split_strategy, "refit": refit},
        search=search,
        training_seconds=time.perf_counter() - started,
    )


def _search_on_a_sample(client: Client, frame: dd.DataFrame, preprocessor: Preprocessor, config: TrainingConfig,
                        counts: dict) -> tuple[TrainingConfig, dict | None]:
    """The configuration searched as in one process, on a random sample of the train and
    validation rows that one worker holds: each trial a whole distributed training would
    multiply the training's cost by the trials. The chosen configuration then trains on all
    the rows; early stopping still picks its rounds there. No record when the sample holds no
    frauds of a split to judge trials by: the configuration given trains."""
    rows = counts["train"]["rows"] + counts["validation"]["rows"]
    share = min(1.0, SEARCH_SAMPLE_ROWS / max(rows, 1))
    held = frame[frame[SPLIT] != TEST]
    sample = held if share >= 1.0 else held.sample(frac=share, random_state=config.seed)
    # The sample is computed on the workers and searched where it lies: it never comes here.
    [sample_on_a_worker] = client.compute([sample])
    chosen, report, drawn = client.submit(_search_sample, sample_on_a_worker, preprocessor, config,
                                          pure=False).result()
    if report is None:
        log.warning("no search: the sample of %d rows holds %d training and %d validation frauds; "
                    "training the configuration given", drawn["rows"], drawn["train_frauds"],
                    drawn["validation_frauds"])
        return config, None
    report["sample"] = {"share": round(share, 6), **drawn}
    log.info("search on a sample of %d rows (%.2f %% of train and validation) chose trial %d",
             drawn["rows"], 100 * share, report["chosen_trial"])
    return chosen, report


def _search_sample(sample: pd.DataFrame, preprocessor: Preprocessor, config: TrainingConfig):
    """(chosen configuration, search record, the sample's counts); no record when the sample
    lacks frauds to judge trials by."""
    train, validation = sample[sample[SPLIT] == TRAIN], sample[sample[SPLIT] == VALIDATION]
    drawn = {"rows": len(sample), "train_frauds": int(train[LABEL].sum()),
             "validation_frauds": int(validation[LABEL].sum())}
    if not drawn["train_frauds"] or not drawn["validation_frauds"]:
        return config, None, drawn
    outcome = search_on_rows(train, validation, preprocessor, config)
    # Only the configuration and the record travel back; the trial's booster stays here.
    return outcome.config, outcome.report, drawn


def _partition_summary(part: pd.DataFrame) -> pd.DataFrame:
    """One row: counts per split, Time's range, the training rows' feature sums and the
    partition's content hash."""
    labels = part[LABEL].to_numpy()
    splits = part[SPLIT].to_numpy()
    row: dict = {}
    for name, code in _PARTS.items():
        mine = splits == code
        row[f"{name}_rows"] = int(mine.sum())
        row[f"{name}_frauds"] = int(labels[mine].sum())
    times = part[TIME].to_numpy()
    row["first_time"] = float(times.min()) if len(times) else np.inf
    row["last_time"] = float(times.max()) if len(times) else -np.inf
    unscaled = unscaled_features(part[splits == TRAIN])
    for i, (total, square) in enumerate(zip(unscaled.sum(axis=0), (unscaled**2).sum(axis=0), strict=True)):
        row[f"sum_{i}"], row[f"square_{i}"] = float(total), float(square)
    row["fingerprint"] = data_fingerprint([part.drop(columns=[SPLIT])])["sha256"] if len(part) else ""
    return pd.DataFrame([row])


def _summarise(frame: dd.DataFrame) -> dict:
    meta = _partition_summary(frame._meta)
    rows = frame.map_partitions(_partition_summary, meta=meta.iloc[:0]).compute()
    counts = {name: {"rows": int(rows[f"{name}_rows"].sum()), "frauds": int(rows[f"{name}_frauds"].sum())}
              for name in _PARTS}
    return {
        "counts": counts,
        "rows": sum(part["rows"] for part in counts.values()),
        "first_time": float(rows["first_time"].min()),
        "last_time": float(rows["last_time"].max()),
        "sums": np.array([rows[f"sum_{i}"].sum() for i in range(_N)]),
        "squares": np.array([rows[f"square_{i}"].sum() for i in range(_N)]),
        "fingerprints": [digest for digest in rows["fingerprint"] if digest],
    }


def _score_counts(part: pd.DataFrame, models: tuple[FraudModel, FraudModel]) -> np.ndarray:
    """Sparse counts of the partition's validation rows (with their calibration folds) and test
    rows by label and score bin: a few thousand lines however many rows the partition holds.
    ``models`` score validation and test."""
    counts = []
    for group, (code, model) in enumerate(zip((VALIDATION, TEST), models, strict=True)):
        rows = part[part[SPLIT] == code]
        if len(rows):
            folds = content_folds(rows[list(FEATURE_COLUMNS)]) if code == VALIDATION else None
            counts.append(count_scores(rows[LABEL].to_numpy(), model.predict_proba(feature_matrix(rows)),
                                       group=group, folds=folds))
    return np.concatenate(counts) if counts else np.empty((0, COUNT_COLUMNS), dtype=np.int64)


def _held_out_scores(client: Client, frame: dd.DataFrame, validation_model: FraudModel,
                     test_model: FraudModel) -> tuple[ScoredRows, ScoredRows]:
    """Validation scored by the early-stopped model (out of sample for the threshold and the
    calibration), test by the model shipped; each partition sends counts per score bin, which
    this process adds up as they arrive."""
    [models] = client.scatter([(portable_model(validation_model), portable_model(test_model))], broadcast=True)
    futures = client.compute([dask.delayed(_score_counts)(part, models)
                              for part in frame.to_delayed()])
    totals = ScoreCounts(groups=2, folds=CALIBRATION_FOLDS)
    added_up(futures, totals.add)
    return totals.scored_rows(0), totals.scored_rows(1, folded=False)


def _drift_sample(frame: dd.DataFrame, train_rows: int, seed: int) -> dict:
    columns = list(profile.DRIFT_FEATURES)
    train = frame[frame[SPLIT] == TRAIN][columns]
    share = min(1.0, DRIFT_SAMPLE_ROWS / max(train_rows, 1))
    sample = (train if share >= 1.0 else train.sample(frac=share, random_state=seed)).compute()
    return {name: sample[name].to_numpy() for name in columns}


