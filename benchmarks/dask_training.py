"""Training throughput and memory: one process against the Dask cluster on one and two workers.

Run from the repository root (not a test; figures printed, nothing asserted):

    .venv/bin/python benchmarks/dask_training.py --rows 2000000 --memory-limit 700MB

Writes ``--rows`` labelled rows as CSV files of ``--file-rows`` rows (cached under
``--workdir``), then times ``fraud train --data DIR`` three ways, each in a fresh process:
without a scheduler, and against a fresh local cluster (``dask scheduler``/``dask worker``
on 127.0.0.1, one thread per worker, ``--memory-limit``) of one and of two workers. Reports
rows trained per second (all rows read, over the command's wall time), the command's peak RSS
(``os.wait4``) and each worker's peak RSS (``getrusage`` inside the worker, after the run).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FRAUD = str(Path(sys.executable).with_name("fraud"))


def write_data(folder: Path, rows: int, file_rows: int) -> Path:
    from fraud_assets.core.data.tables import write_table
    from fraud_assets.synthetic.generate import generate_transactions

    data = folder / f"train-{rows}"
    if data.exists():
        return data
    partial = folder / f".partial-{rows}"
    partial.mkdir(parents=True, exist_ok=True)
    days = max(1.0, rows / 1_000_000)
    for number, start in enumerate(range(0, rows, file_rows)):
        count = min(file_rows, rows - start)
        frame = generate_transactions(count, seed=number, start_day=int(number * days * file_rows / rows),
                                      n_days=max(days * count / rows, 0.05), fraud_rate=0.005)
        write_table(frame, str(partial / f"part-{number:03d}.csv"))
    partial.rename(data)
    return data


def timed_train(data: Path, output: Path, scheduler: str | None, trees: int | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `fraud train` process."""
    # Tracking off: it is not what is measured, and it would write an MLflow store here.
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_DASK_SCHEDULER"} | {"FRAUD_TRACKING": "off"}
    if trees is not None:
        env["FRAUD_PARALLEL_TREES"] = str(trees)
    if scheduler:
        env["FRAUD_DASK_SCHEDULER"] = scheduler
    started = time.perf_counter()
    # No search: the cluster trains the configuration given, so both sides train the same.
    process = subprocess.Popen([FRAUD, "train", "--data", str(data), "--output-dir", str(output),
                                "--search-budget", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    log = process.stdout.read().decode()
    if status != 0:
        raise RuntimeError(f"fraud train failed:\n{log[-3000:]}")
    print("   ", log.strip().splitlines()[-1])
    return seconds, usage.ru_maxrss / 1024


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def on_cluster(data: Path, work: Path, workers: int, memory_limit: str,
               trees: int | None = None) -> tuple[float, float, list[float]]:
    from distributed import Client

    from fraud_assets_tests.services.dask_cluster import LocalDaskCluster

    cluster = LocalDaskCluster(Path(tempfile.mkdtemp(dir=work)), workers=workers, memory_limit=memory_limit)
    try:
        seconds, client_peak = timed_train(data, work / f"model-{workers}w", cluster.address, trees)
        with Client(cluster.address, timeout=30, set_as_default=False) as client:
            peaks = sorted(client.run(_peak_rss_mb).values())
        return seconds, client_peak, peaks
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--file-rows", type=int, default=250_000)
    parser.add_argument("--memory-limit", default="700MB")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="cluster sizes to time")
    parser.add_argument("--no-one-process", action="store_true", help="skip the single-process run")
    parser.add_argument("--parallel-trees", type=int, default=None,
                        help="trees a round for every run (FRAUD_PARALLEL_TREES); default: the training's")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fraud-dask-benchmark")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = write_data(args.workdir, args.rows, args.file_rows)
    on_disk = sum(p.stat().st_size for p in data.iterdir()) / 2**20
    print(f"{args.rows:,} rows, {on_disk:,.0f} MB of CSV in {len(list(data.iterdir()))} files; "
          f"about {args.rows * 31 * 8 / 2**20:,.0f} MB as float64; worker limit {args.memory_limit}; "
          f"trees a round: {args.parallel_trees or 'the default'}")
    if not args.no_one_process:
        seconds, peak = timed_train(data, args.workdir / "model-1p", None, args.parallel_trees)
        print(f"one process : {seconds:7.1f} s  {args.rows / seconds:9,.0f} rows/s  peak {peak:,.0f} MB")
    for workers in args.workers:
        try:
            seconds, client_peak, peaks = on_cluster(data, args.workdir, workers, args.memory_limit,
                                                     args.parallel_trees)
        except RuntimeError as failure:
            last = [line for line in str(failure).splitlines() if line.strip()][-1]
            print(f"{workers} worker(s) : failed: {last}")
            continue
        print(f"{workers} worker(s) : {seconds:7.1f} s  {args.rows / seconds:9,.0f} rows/s  "
              f"client peak {client_peak:,.0f} MB  worker peaks {', '.join(f'{p:,.0f}' for p in peaks)} MB")


if __name__ == "__main__":
    main()
