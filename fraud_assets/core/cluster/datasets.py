"""The training data of the Dagster graph, written by the Dask workers: the labelled base file,
the training dataset and its splits leave the workers as Parquet parts in a folder the caller
names, and only counts and moments come back.

A part holds at most :data:`PART_ROWS` rows, so a worker never holds more than one part of a
file whatever the file's size, and a later step reads the parts as partitions. Parts are named
so that their name order is the dataset's order (base file first, then day by day), which is
the order :func:`~fraud_assets.core.data.inputs.resolve_tables` lists them in.
"""

from __future__ import annotations

import dataclasses
import math
import posixpath
from dataclasses import dataclass, field

import dask
import fsspec
import numpy as np
import pandas as pd
from distributed import Client, wait

from fraud_assets.core.cluster.client import added_up
from fraud_assets.core.cluster.scoring import portable_model
from fraud_assets.core.cluster.splits import TEST, TRAIN, VALIDATION, plan_splits, split_of
from fraud_assets.core.cluster.tables import labelled_frame
from fraud_assets.core.data.features import (
    STANDARDISED_FEATURES,
    Preprocessor,
    preprocessor_from_moments,
    unscaled_features,
)
from fraud_assets.core.data.inputs import TableSet
from fraud_assets.core.data.labels import BATCH_FILE, TRANSACTION_ID, batch_rows, with_labels
from fraud_assets.core.data.schema import LABEL, LABELLED_COLUMNS, TIME, DataValidationError, feature_matrix
from fraud_assets.core.data.splits import DAY_COLUMN, MIN_ROWS_PER_CLASS
from fraud_assets.core.data.tables import iter_transaction_chunks, write_table
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.core.model.gate import HeldOutScores
from fraud_assets.core.model.scored_rows import ScoreCounts, count_scores

# Rows per part: about 65 MB as float64 in a worker, a comfortable partition for workers of a
# few GB, and few enough parts (1,700 for 450M rows) for the scheduler.
PART_ROWS = 2**18
SPLIT_NAMES = {"train": TRAIN, "validation": VALIDATION, "test": TEST}


@dataclass(frozen=True)
class CopyJob:
    """One table read, validated and written as parts by one worker.

    ``labels`` makes it a scored batch file of ``day``: its rows get ``Class`` from the labels
    reported for them (unreported: genuine), as in one process. Without them the table must
    carry ``Class`` itself.
    """

    source_url: str
    stem: str
    day: str | None = None
    labels: pd.DataFrame | None = field(default=None, compare=False)
    keep_all_columns: bool = False
    part_rows: int = PART_ROWS


def copy_as_parts(client: Client, jobs: list[CopyJob], folder_url: str, storage_options: dict) -> list[dict]:
    """Each job's table as parts ``{stem}-NNNNN.parquet`` in ``folder_url``; per job its rows,
    frauds and Time's range. The first bad file's :class:`DataValidationError` is raised as
    it is (file, column, row), once no task writes any more: the caller can then remove the
    folder without a late task writing into it again."""
    # Each day's labels travel to the cluster once, not once per batch file of the day.
    shared: dict[int, object] = {}
    for job in jobs:
        if job.labels is not None and id(job.labels) not in shared:
            shared[id(job.labels)] = client.scatter(job.labels)
    labels = [shared[id(job.labels)] if job.labels is not None else None for job in jobs]
    bare = [dataclasses.replace(job, labels=None) for job in jobs]
    futures = client.map(_copy_one, bare, labels, folder_url=folder_url, storage_options=storage_options, pure=False)
    return gathered_when_all_done(client, futures)


def gathered_when_all_done(client: Client, futures: list) -> list:
    wait(futures)
    return client.gather(futures)


def _copy_one(job: CopyJob, labels: pd.DataFrame | None, folder_url: str, storage_options: dict) -> dict:
    in_fs, path = fsspec.core.url_to_fs(job.source_url, **_options_for(job.source_url, storage_options))
    out_fs, folder = fsspec.core.url_to_fs(folder_url, **_options_for(folder_url, storage_options))
    out_fs.makedirs(folder, exist_ok=True)
    summary = _Counts()
    scored_batch = labels is not None
    chunks = iter_transaction_chunks(path, fs=in_fs, require_label=not scored_batch, chunk_rows=job.part_rows,
                                     source=job.source_url)
    for number, chunk in enumerate(chunks):
        if scored_batch:
            rows = batch_rows(chunk, path, first_row=summary.rows)
            rows[LABEL] = with_labels(rows, labels)
            rows = rows.drop(columns=[BATCH_FILE, TRANSACTION_ID])
        elif job.keep_all_columns:
            rows = chunk
        else:
            rows = chunk.loc[:, list(LABELLED_COLUMNS)]
        if job.day is not None:
            rows = rows.assign(**{DAY_COLUMN: job.day})
        write_table(rows, posixpath.join(folder, f"{job.stem}-{number:05d}.parquet"), fs=out_fs)
        summary.add(rows)
    return summary.as_dict()


def _options_for(url: str, storage_options: dict) -> dict:
    return storage_options if url.startswith("s3://") else {}


class _Counts:
    def __init__(self) -> None:
        self.rows, self.frauds, self.time_min, self.time_max = 0, 0, math.inf, -math.inf

    def add(self, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        times = rows[TIME].to_numpy()
        self.rows += len(rows)
        self.frauds += int(rows[LABEL].sum())
        self.time_min = min(self.time_min, float(times.min()))
        self.time_max = max(self.time_max, float(times.max()))

    def as_dict(self) -> dict:
        return {"rows": self.rows, "frauds": self.frauds, "time_min": self.time_min, "time_max": self.time_max}


def merged_counts(counts: list[dict]) -> dict:
    return {
        "rows": sum(c["rows"] for c in counts),
        "frauds": sum(c["frauds"] for c in counts),
        "time_min": min((c["time_min"] for c in counts), default=math.inf),
        "time_max": max((c["time_max"] for c in counts), default=-math.inf),
    }


def split_as_parts(
    client: Client,
    tables: TableSet,
    folder_urls: dict[str, str],
    *,
    strategy: str = "time",
    seed: int = 0,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> dict[str, dict]:
    """Train, validation and test parts of ``tables`` in ``folder_urls[name]``, each row's part
    decided where the row is (:mod:`.splits`); per split its rows, frauds and Time's range.
    Refuses a split without enough of each class before anything downstream trains."""
    frame = labelled_frame(tables)
    plan = plan_splits(frame, strategy, seed, validation_fraction=validation_fraction, test_fraction=test_fraction)
    tasks = [
        dask.delayed(_split_partition)(part, number, plan, folder_urls, tables.storage_options)
        for number, part in enumerate(frame.to_delayed())
    ]
    per_partition = gathered_when_all_done(client, client.compute(tasks))
    counts = {name: merged_counts([p[name] for p in per_partition]) for name in SPLIT_NAMES}
    require_both_classes(counts, tables.spec)
    return counts


def _split_partition(part: pd.DataFrame, number: int, plan, folder_urls: dict[str, str],
                     storage_options: dict) -> dict[str, dict]:
    which = split_of(part, plan)
    counts = {}
    for name, code in SPLIT_NAMES.items():
        rows = part[which == code].reset_index(drop=True)
        tally = _Counts()
        if len(rows):
            fs, folder = fsspec.core.url_to_fs(folder_urls[name], **_options_for(folder_urls[name], storage_options))
            fs.makedirs(folder, exist_ok=True)
            write_table(rows, posixpath.join(folder, f"part-{number:05d}.parquet"), fs=fs)
            tally.add(rows)
        counts[name] = tally.as_dict()
    return counts


def require_both_classes(counts: dict[str, dict], source: str) -> None:
    """The cluster's counterpart of the one-process check: every split needs frauds and
    genuine rows, or training, early stopping or the gate has nothing to go on."""
    short = [name for name, c in counts.items()
             if c["frauds"] < MIN_ROWS_PER_CLASS or c["rows"] - c["frauds"] < MIN_ROWS_PER_CLASS]
    if short:
        has = ", ".join(f"{name} has {c['frauds']} of {c['rows']} rows" for name, c in counts.items())
        raise DataValidationError(source, [
            f"too few frauds (or genuine rows) to train: each of train, validation and test needs "
            f"at least {MIN_ROWS_PER_CLASS} fraud and {MIN_ROWS_PER_CLASS} genuine row; frauds per split: {has}"
        ])


_N = len(STANDARDISED_FEATURES)


def _moments(part: pd.DataFrame) -> pd.DataFrame:
    unscaled = unscaled_features(part)
    row = {"rows": len(part)}
    for i in range(_N):
        row[f"sum_{i}"] = float(unscaled[:, i].sum())
        row[f"square_{i}"] = float((unscaled[:, i] ** 2).sum())
    return pd.DataFrame([row])


def fit_preprocessor_on_cluster(client: Client, tables: TableSet) -> tuple[Preprocessor, int]:
    """``fit_preprocessor`` of the training split from each partition's sums and squares,
    computed by the workers; and the rows it was fitted on."""
    frame = labelled_frame(tables)
    moments = frame.map_partitions(_moments, meta=_moments(frame._meta).iloc[:0])
    moments = client.compute(moments).result()
    rows = int(moments["rows"].sum())
    sums = np.array([moments[f"sum_{i}"].sum() for i in range(_N)])
    squares = np.array([moments[f"square_{i}"].sum() for i in range(_N)])
    return preprocessor_from_moments(rows, sums, squares), rows


def score_split_on_cluster(
    client: Client, tables: TableSet, candidate: FraudModel, production: FraudModel | None
) -> tuple[HeldOutScores, str | None]:
    """A stored split scored by the workers for the quality gate: each model's rows as counts
    per label and score bin (a few megabytes reach this process, however long the split), and
    the latest transaction day it holds (None when it holds only base-file rows)."""
    frame = labelled_frame(tables)
    # Each worker receives the models once, not once per partition.
    [shipped] = client.scatter([(portable_model(candidate),
                                 portable_model(production) if production is not None else None)], broadcast=True)
    futures = client.compute([dask.delayed(_score_partition)(part, shipped) for part in frame.to_delayed()])
    totals = ScoreCounts(groups=2)
    days: list[str] = []

    def add(result: tuple[np.ndarray, str | None]) -> None:
        counts, last_day = result
        totals.add(counts)
        if last_day:
            days.append(last_day)

    added_up(futures, add)
    return HeldOutScores(
        candidate=totals.scored_rows(0),
        production=totals.scored_rows(1) if production is not None else None,
    ), (max(days) if days else None)


def _score_partition(part: pd.DataFrame, models: tuple[FraudModel, FraudModel | None]):
    features = feature_matrix(part)
    labels = part[LABEL].to_numpy(dtype=np.int8)
    counts = [count_scores(labels, model.predict_proba(features), group=group)
              for group, model in enumerate(models) if model is not None]
    days = part[DAY_COLUMN].astype(str) if DAY_COLUMN in part.columns else pd.Series([], dtype=str)
    days = [day for day in days.unique() if day]
    return np.concatenate(counts), (max(days) if days else None)

