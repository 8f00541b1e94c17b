"""What becomes of each batch file of the days one `daily_predictions` run covers: one day
(the schedule, the sensor) or a backfill's whole range in a single run.

Every file is decided the same way wherever it is scored. Predictions are written first,
then the summary, then the file moves to `processed/`; a rejected file moves to
`quarantine/` with its reason. The summary is the mark of a scored file, so a run that
stops half-way is simply run again: what it finished is not scored twice.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from fraud_assets.core.model.file_outcomes import FileOutcome, score_or_reject
from fraud_assets.core.storage.failures import storage_operation
from fraud_assets.core.storage.locations import Location, read_json, write_json_atomic
from fraud_assets.defs.batches import (
    batch_stem,
    list_batch_files,
    move_to,
    name_clashes,
    prediction_name,
    processed_folder,
    quarantine,
    stats_name,
)
from fraud_assets.defs.errors import permanent_failure
from fraud_assets.defs.resources import DaskCluster, DatasetSettings


@dataclass(frozen=True)
class BatchFile:
    day: str
    order: int  # its place in the day's listing: the day's summaries are reported in it
    path: str
    # The file of the day that keeps the predictions' name this one would also take.
    keeper: str | None

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass
class DayReport:
    day: str
    summaries: dict[int, dict] = field(default_factory=dict)
    fresh: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)

    def ordered_summaries(self) -> list[dict]:
        return [self.summaries[order] for order in sorted(self.summaries)]


# (model, files to score) -> (index into files, outcome) as each one finishes.
Scorer = Callable[[object, Sequence[BatchFile]], Iterator[tuple[int, FileOutcome]]]


class DayScoring:
    def __init__(self, context, *, data: Location, predictions: Location, dataset: DatasetSettings,
                 files: list[str] | None, rescore: bool, load_model: Callable[[], object]):
        self.context, self.data, self.predictions, self.dataset = context, data, predictions, dataset
        self.chosen = set(files) if files is not None else None
        self.rescore = rescore
        self._load_model = load_model
        self.model = None

    # Planning -------------------------------------------------------------------------
    def waves(self, days: Sequence[str]) -> list[list[BatchFile]]:
        """The days' files in waves: files whose predictions share a name (`a.csv` and
        `a.parquet`) fall in successive waves, the one that keeps the name first, so each
        is decided knowing whether the one before it was scored; all others go in the first."""
        waves: list[list[BatchFile]] = []
        missing_days, found = [], set()
        for day in days:
            processed = processed_folder(self.dataset.processed_prefix, day)
            batch_files = list_batch_files(self.data, day, (self.dataset.incoming_prefix, processed))
            found |= {posixpath.basename(path) for path in batch_files}
            if not batch_files:
                missing_days.append(day)
                continue
            clashes = name_clashes(batch_files, self.data.path(processed))
            ranks: dict[str, int] = {}
            for order, path in sorted(enumerate(batch_files), key=lambda item: item[1] in clashes):
                stem = batch_stem(path)
                rank = ranks[stem] = ranks.get(stem, -1) + 1
                while len(waves) <= rank:
                    waves.append([])
                keeper = posixpath.basename(clashes[path]) if path in clashes else None
                waves[rank].append(BatchFile(day, order, path, keeper))
        if self.chosen is not None and self.chosen - found:
            span = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
            raise permanent_failure(f"batch files not found for {span}: {sorted(self.chosen - found)}")
        if missing_days:
            shown = ", ".join(missing_days[:10]) + (" ..." if len(missing_days) > 10 else "")
            # Checked before anything is scored: a backfill over days without data changes nothing.
            raise permanent_failure(
                f"no batch files for {shown} under {self.data.url_of(self.dataset.incoming_prefix)}"
                + ("; backfill only days that have data" if len(days) > 1 else "")
            )
        return waves

    # Deciding and recording -------------------------------------------------------------
    def run(self, days: Sequence[str], scorer: Scorer) -> dict[str, DayReport]:
        reports = {day: DayReport(day) for day in days}
        for wave in self.waves(days):
            to_score = [file for file in wave if self._decide(file, reports[file.day])]
            if not to_score:
                continue
            self.model = self.model or self._load_model()
            for number, outcome in scorer(self.model, to_score):
                self._record(to_score[number], outcome, reports[to_score[number].day])
        return reports

    def _stats_path(self, file: BatchFile) -> str:
        return self.predictions.path(f"date={file.day}", stats_name(file.path))

    def _decide(self, file: BatchFile, report: DayReport) -> bool:
        """True when the file is to be scored now; otherwise it is accounted for here."""
        stats_path = self._stats_path(file)
        already_scored = self.predictions.fs.exists(stats_path)
        # Refused only once another file holds the name (scored): if that one was
        # quarantined, this one is scored in its place.
        if file.keeper and (self.chosen is None or file.name in self.chosen) and already_scored:
            reason = (f"{self.data.display(file.path)}: {file.keeper} of the same day has the same name "
                      "before its extension and their predictions would overwrite each other; "
                      "rename this file")
            self._reject(file, reason, report)
            return False
        wanted = file.name in self.chosen if self.chosen is not None else (self.rescore or not already_scored)
        if not wanted and already_scored:
            # Not scored this time, but still part of the day's totals.
            report.summaries[file.order] = read_json(self.predictions.fs, stats_path)
        return wanted

    def _record(self, file: BatchFile, outcome: FileOutcome, report: DayReport) -> None:
        if outcome.rejection is not None:
            self._reject(file, outcome.rejection, report)
            return
        output = self.output_of(file)
        if not self.predictions.fs.exists(output):
            # A worker wrote it where this process cannot see it (a local folder the workers
            # do not share): recording the file as scored would lose its predictions.
            raise permanent_failure(
                f"{self.data.display(file.path)} was scored but {self.predictions.display(output)} "
                "is not there: the Dask workers and this run must share the predictions storage "
                "(S3, or a folder every worker sees)"
            )
        # From here on only storage can fail: a failure is retried, never blamed on the file.
        with storage_operation(f"recording {self.data.display(file.path)} as scored"):
            processed = move_to(self.data, file.path, processed_folder(self.dataset.processed_prefix, file.day))
            summary = {**outcome.stats.to_dict(), "input": self.data.display(processed),
                       "output": self.predictions.display(output)}
            write_json_atomic(self.predictions.fs, self._stats_path(file), summary)
        self.context.log.info("scored %s", summary)
        report.summaries[file.order] = summary
        report.fresh.append(summary)

    def _reject(self, file: BatchFile, reason: str, report: DayReport) -> None:
        moved = quarantine(self.data, file.path, self.dataset.quarantine_prefix, reason)
        report.rejected.append({"file": self.data.display(file.path), "quarantined_to": self.data.display(moved),
                                "reason": reason})
        self.context.log.error("rejected %s: %s", file.path, reason)

    # Scoring ---------------------------------------------------------------------------
    def output_of(self, file: BatchFile) -> str:
        return self.predictions.path(f"date={file.day}", prediction_name(file.path))


@contextlib.contextmanager
def scorer_for(scoring: DayScoring, dask: DaskCluster) -> Iterator[Scorer]:
    """The day's files scored one after another in this process, or spread over the Dask
    workers, each into its prediction file."""
    with pair_scorer(scoring.data, scoring.predictions, scoring.dataset.scoring_chunk_rows, dask,
                     scoring.context.log) as score_pairs:
        yield lambda model, files: score_pairs(model, [(file.path, scoring.output_of(file)) for file in files])


# A model and (input path, output path) pairs in; (index into the pairs, outcome) out, as each
# file finishes.
PairScorer = Callable[[object, Sequence[tuple[str, str]]], Iterator[tuple[int, FileOutcome]]]


@contextlib.contextmanager
def pair_scorer(data: Location, output: Location, chunk_rows: int, dask: DaskCluster, log) -> Iterator[PairScorer]:
    """Batch files of ``data`` scored into ``output``: one after another in this process, or
    side by side on the Dask workers through one client for as long as the context lasts.
    Production's predictions and the challenger's shadow scores are both made this way."""
    if not dask.configured:
        def here(model, pairs: Sequence[tuple[str, str]]) -> Iterator[tuple[int, FileOutcome]]:
            for number, (source, target) in enumerate(pairs):
                yield number, score_or_reject(model, source, target, input_fs=data.fs, output_fs=output.fs,
                                              chunk_rows=chunk_rows, source=data.display(source))

        yield here
        return
    # Imported only on this path: without a scheduler no Dask module is loaded.
    from fraud_assets.core.cluster.scoring import FileToScore, outcomes_on_cluster

    with dask.client() as client:
        log.info("scoring on the Dask cluster at %s", dask.scheduler)

        def on_cluster(model, pairs: Sequence[tuple[str, str]]) -> Iterator[tuple[int, FileOutcome]]:
            addresses = [FileToScore(data.display(source), output.display(target)) for source, target in pairs]
            return outcomes_on_cluster(client, model, addresses, input_options=data.storage_options,
                                       output_options=output.storage_options, chunk_rows=chunk_rows)

        yield on_cluster
