"""Distributed training whose memory on each worker grows far more slowly than its rows.

``xgboost.dask``'s matrices gather a worker's whole share of the rows in its memory before
the quantile sketch, so a cluster trains only what its memory holds. Here each worker streams
its partitions once to its local disk as preprocessed batches, builds XGBoost's external-memory
quantile matrices from them (pages cached on the same disk) and joins the others in XGBoost's
own collective (the Rabit tracker ``xgboost.dask`` uses too) for the sketch and every boosting
round. A worker holds one partition and the current page of features at a time, beside
XGBoost's per-row training state (gradients, predictions), which does grow with its share.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numpy as np
import xgboost as xgb
from distributed import Client, get_worker, wait
from distributed.comm import get_address_host
from distributed.utils import get_ip
from xgboost import collective
from xgboost.tracker import RabitTracker

from fraud_assets.core.cluster.errors import ClusterUnavailable
from fraud_assets.core.cluster.splits import SPLIT, TRAIN, VALIDATION
from fraud_assets.core.data.features import Preprocessor
from fraud_assets.core.data.schema import LABEL

log = logging.getLogger(__name__)

# Waiting for every worker to join the tracker, and for a peer inside a round: a lost worker
# fails the training after this long instead of leaving the others blocked for ever.
COLLECTIVE_TIMEOUT_SECONDS = 1800
TRAINING_ATTEMPTS = 3
WORKER_CHECK_SECONDS = 2


@dataclass(frozen=True)
class Boosting:
    """What each worker needs to train its part: the booster parameters (``max_bin`` among
    them, which the matrices must share), the rounds, and whether the rounds early stopping
    keeps are fitted again on train and validation together (as in one process)."""

    params: dict
    rounds: int
    early_stopping_rounds: int
    refit_on_validation: bool = False


@dataclass(frozen=True)
class StreamedTraining:
    """The booster early stopping cut, the one refitted on train and validation (None without
    a refit), and how many workers trained them."""

    early_stopped: xgb.Booster
    refitted: xgb.Booster | None
    workers: int


def train_streaming(client: Client, frame: dd.DataFrame, preprocessor: Preprocessor,
                    boosting: Boosting) -> StreamedTraining:
    """Train on the ``TRAIN`` rows of ``frame``, stopping early on its ``VALIDATION`` rows,
    with each worker streaming its share of the partitions through external memory (no more
    workers than there are partitions).

    XGBoost's collective cannot go on without a worker it started with: when one leaves, the
    training starts again on the workers that remain, up to ``TRAINING_ATTEMPTS`` times."""
    parts = frame.to_delayed()
    lost = ""
    for attempt in range(1, TRAINING_ATTEMPTS + 1):
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])[: len(parts)]
        if not workers:
            # After a loss, say which: a worker restarted for memory would otherwise show only
            # as an empty cluster.
            raise ClusterUnavailable(f"no Dask worker is left to train on{lost}")
        try:
            early_stopped, refitted = _train_once(client, parts, workers, preprocessor, boosting)
            return StreamedTraining(early_stopped, refitted, len(workers))
        except _WorkerLeft as left:
            # Even when giving up: blocked peers would hold their threads and matrices until
            # the collective's timeout.
            _restart_blocked_peers(client, left.blocked)
            if attempt == TRAINING_ATTEMPTS:
                raise ClusterUnavailable(f"{left}; training gave up after {attempt} attempts") from left
            log.warning("%s: training again on the workers that remain", left)
            lost = f" ({left})"
    raise AssertionError("unreachable")


class _WorkerLeft(RuntimeError):
    def __init__(self, message: str, blocked: list[str]):
        super().__init__(message)
        self.blocked = blocked


RESTART_TIMEOUT_SECONDS = 120


def _restart_blocked_peers(client: Client, peers: list[str]) -> None:
    # A worker that froze (rather than died) keeps its sockets open, so its peers stay blocked
    # inside XGBoost's collective, in C++ where cancelling the task cannot reach, until the
    # collective's timeout; each holds its thread and its matrices meanwhile. Their nannies
    # start them afresh instead. Without a nanny the next attempt waits for that timeout.
    known = client.scheduler_info(n_workers=-1)["workers"]
    restartable = [peer for peer in peers if known.get(peer, {}).get("nanny")]
    if set(peers) - set(restartable):
        log.warning("cannot restart %s (gone, or no nanny): the next attempt may wait for the "
                    "collective's timeout", ", ".join(sorted(set(peers) - set(restartable))))
    if not restartable:
        return
    log.warning("restarting %s: still blocked in the training the lost worker left", ", ".join(restartable))
    try:
        outcome = client.restart_workers(restartable, timeout=RESTART_TIMEOUT_SECONDS, raise_for_error=False)
    except Exception as error:  # a peer that left meanwhile, a nanny that stopped answering
        log.warning("restarting %s failed (%s): the next attempt may wait for the collective's timeout",
                    ", ".join(restartable), error)
        return
    failed = {peer: status for peer, status in outcome.items() if status != "OK"}
    if failed:
        log.warning("could not restart %s: the next attempt may wait for the collective's timeout", failed)


def _train_once(client: Client, parts: list, workers: list[str], preprocessor: Preprocessor,
                boosting: Boosting) -> tuple[xgb.Booster, xgb.Booster | None]:
    shares = [parts[rank :: len(workers)] for rank in range(len(workers))]
    log.info("streaming %d partitions to %d workers for external-memory training", len(parts), len(workers))
    tracker = RabitTracker(n_workers=len(workers), host_ip=_tracker_host(client), sortby="task",
                           timeout=COLLECTIVE_TIMEOUT_SECONDS)
    tracker.start()
    token, tracker_args = uuid.uuid4().hex[:8], tracker.worker_args()
    futures = [
        client.submit(_train_share, tracker_args, rank, share, preprocessor, boosting,
                      workers=[address], allow_other_workers=False, pure=False, retries=0,
                      key=f"fraud-train-share-{rank}-{token}")
        for rank, (address, share) in enumerate(zip(workers, shares, strict=True))
    ]
    try:
        _wait_while_all_stay(client, futures, workers)
        results = client.gather(futures)
        tracker.wait_for(COLLECTIVE_TIMEOUT_SECONDS)
    finally:
        client.cancel(futures)
        # A tracker whose group broke up reports it again here: the error that matters is
        # the one already on its way.
        with contextlib.suppress(xgb.core.XGBoostError):
            tracker.free()
    early_stopped, refitted = next(raw for raw in results if raw is not None)
    return (xgb.Booster(model_file=bytearray(early_stopped)),
            xgb.Booster(model_file=bytearray(refitted)) if refitted is not None else None)


def _wait_while_all_stay(client: Client, futures: list, workers: list[str]) -> None:
    # A task pinned to a worker that died waits for that worker for ever, and its peers
    # fail or wait in the collective: watch the workers instead of waiting on the tasks alone.
    while True:
        with contextlib.suppress(TimeoutError):
            wait(futures, timeout=WORKER_CHECK_SECONDS)
        failed = any(future.status == "error" for future in futures)
        if failed:
            # A peer's broken connection can fail its task before the scheduler hears that
            # the worker at the other end died: give it the time to.
            time.sleep(WORKER_CHECK_SECONDS)
        gone = set(workers) - set(client.scheduler_info(n_workers=-1)["workers"])
        if gone:
            blocked = [address for address, future in zip(workers, futures, strict=True)
                       if address not in gone and not future.done()]
            raise _WorkerLeft(f"worker {', '.join(sorted(gone))} left the cluster during training (its log "
                              "says why; a worker that passes its memory limit is restarted by its nanny)", blocked)
        if failed or all(future.done() for future in futures):
            return


def _tracker_host(client: Client) -> str:
    # The address of this host on the route to the scheduler: the workers reach it there.
    return get_ip(get_address_host(client.scheduler.address))


def _train_share(tracker_args: dict, rank: int, share: list, preprocessor: Preprocessor,
                 boosting: Boosting) -> tuple[bytes, bytes | None] | None:
    worker = get_worker()
    threads = worker.state.nthreads
    with _memory_given_back(), tempfile.TemporaryDirectory(prefix="fraud-train-", dir=worker.local_directory) as folder:
        batches = _spill(share, preprocessor, folder)
        with collective.CommunicatorContext(dmlc_communicator="rabit", dmlc_task_id=str(rank),
                                            dmlc_timeout=COLLECTIVE_TIMEOUT_SECONDS, **tracker_args):
            names = list(preprocessor.feature_names)
            train = xgb.ExtMemQuantileDMatrix(
                _Batches(batches[TRAIN], names, os.path.join(folder, "train-cache")),
                max_bin=boosting.params["max_bin"], nthread=threads)
            validation = xgb.ExtMemQuantileDMatrix(
                _Batches(batches[VALIDATION], names, os.path.join(folder, "validation-cache")),
                ref=train, max_bin=boosting.params["max_bin"], nthread=threads)
            booster = xgb.train({**boosting.params, "nthread": threads}, train,
                                num_boost_round=boosting.rounds, evals=[(validation, "validation")],
                                early_stopping_rounds=boosting.early_stopping_rounds, verbose_eval=False)
            rounds = booster.best_iteration + 1
            # Every worker ends with the same models; one sends them back.
            early_stopped = bytes(booster.save_raw("ubj")) if collective.get_rank() == 0 else None
            # XGBoost removes its page files when the matrices go, which must be before
            # their folder does.
            del train, validation, booster
            refitted = None
            if boosting.refit_on_validation:
                both = xgb.ExtMemQuantileDMatrix(
                    _Batches(batches[TRAIN] + batches[VALIDATION], names, os.path.join(folder, "refit-cache")),
                    max_bin=boosting.params["max_bin"], nthread=threads)
                booster = xgb.train({**boosting.params, "nthread": threads}, both, num_boost_round=rounds,
                                    verbose_eval=False)
                refitted = bytes(booster.save_raw("ubj")) if collective.get_rank() == 0 else None
                del both, booster
            return (early_stopped, refitted) if early_stopped is not None else None


@contextlib.contextmanager
def _memory_given_back():
    # glibc keeps the training's freed memory in the process, where Dask counts it against the
    # worker's limit and pauses the worker for the tasks that follow (held-out scores).
    try:
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _spill(share: list, preprocessor: Preprocessor, folder: str) -> dict[int, list[str]]:
    """Read each partition once, here, and keep its training and validation rows as
    preprocessed arrays on local disk: the matrices below read them more than once."""
    batches: dict[int, list[str]] = {TRAIN: [], VALIDATION: []}
    for number, delayed_part in enumerate(share):
        (part,) = dask.compute(delayed_part, scheduler="sync")
        splits = part[SPLIT].to_numpy()
        for code, paths in batches.items():
            rows = part[splits == code]
            if len(rows):
                path = os.path.join(folder, f"{code}-{number}.npz")
                np.savez(path, features=preprocessor.transform_frame(rows).astype(np.float32),
                         labels=rows[LABEL].to_numpy(dtype=np.float32))
                paths.append(path)
        del part
    return batches


class _Batches(xgb.DataIter):
    """The spilled arrays one at a time. A worker whose share has no rows of a split (a time
    split puts late partitions wholly in validation) gives one weightless row of missing
    values: XGBoost needs a batch on every worker, and this one changes neither the sketch,
    the gradients nor the validation metric."""

    def __init__(self, paths: list[str], names: list[str], cache_prefix: str):
        super().__init__(cache_prefix=cache_prefix, release_data=True)
        self._paths, self._names, self._next = paths, names, 0

    def next(self, input_data) -> bool:
        if self._next >= max(len(self._paths), 1):
            return False
        self._next += 1
        if not self._paths:
            input_data(data=np.full((1, len(self._names)), np.nan, np.float32), label=np.zeros(1, np.float32),
                       weight=np.zeros(1, np.float32), feature_names=self._names)
            return True
        with contextlib.closing(np.load(self._paths[self._next - 1])) as arrays:
            labels = arrays["labels"]
            input_data(data=arrays["features"], label=labels, weight=np.ones(len(labels), np.float32),
                       feature_names=self._names)
        return True

    def reset(self) -> None:
        self._next = 0
