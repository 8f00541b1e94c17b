"""The Dagster training branch in one process against the Dask cluster: the run's peak memory.

Run from the repository root (not a test; figures printed, nothing asserted):

    .venv/bin/python benchmarks/dagster_cluster_training.py --rows 2000000 --memory-limit 800MB

Writes ``--rows`` labelled rows as the project's base file (``data/raw/creditcard.csv`` of a
throwaway ``FRAUD_LOCAL_DIR``, cached under ``--workdir``), then materialises `raw_transactions`
through `production_model` (the splits, preprocessing, `fraud_model` with no search, the gate)
in a fresh process, once without a scheduler and once against a fresh local cluster
(``dask scheduler``/``dask worker`` on 127.0.0.1, one thread per worker, ``--memory-limit``).
Reports the run's wall time, the run process's peak RSS (``os.wait4``) and each worker's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BRANCH = ["raw_transactions", "training_dataset", "train_split", "validation_split", "test_split",
          "preprocessing_pipeline", "fraud_model", "production_model", "challenger_model"]
RUN = f"""
import sys
import dagster as dg
from fraud_assets.definitions import build_definitions, build_resources
from fraud_assets.defs.resources import DaskCluster

defs = build_definitions("local")
resources = build_resources("local")
if len(sys.argv) > 1:
    resources["dask"] = DaskCluster(scheduler=sys.argv[1])
with dg.instance_for_test() as instance:
    result = dg.materialize([*defs.assets, *defs.asset_checks], selection={BRANCH!r}, resources=resources,
                            instance=instance,
                            run_config={{"ops": {{"fraud_model": {{"config": {{"search_budget_seconds": 0}}}}}}}})
    assert result.success
    model = resources["storage"].registry().load_latest()
    print("trained", model.version, "test AUPRC", round(model.metrics["test"]["auprc"], 4),
          model.manifest["training"].get("engine", "one process"))
"""


def write_base_file(folder: Path, rows: int) -> Path:
    from fraud_assets.core.data.tables import write_table
    from fraud_assets.synthetic.generate import generate_transactions

    cached = folder / f"creditcard-{rows}.csv"
    if not cached.exists():
        frame = generate_transactions(rows, seed=1, n_days=max(2.0, rows / 1_000_000), fraud_rate=0.005)
        write_table(frame, str(cached))
    return cached


def timed_run(base_file: Path, project: Path, scheduler: str | None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one run of the branch, in a fresh project folder."""
    shutil.rmtree(project, ignore_errors=True)
    (project / "data" / "raw").mkdir(parents=True)
    os.link(base_file, project / "data" / "raw" / "creditcard.csv")
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_DASK_SCHEDULER"} | {
        "FRAUD_LOCAL_DIR": str(project), "FRAUD_ENV": "local", "FRAUD_TRACKING": "off"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", RUN, *([scheduler] if scheduler else [])], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    log = process.stdout.read().decode()
    if status != 0:
        raise RuntimeError(f"the run failed:\n{log[-3000:]}")
    print("   ", [line for line in log.splitlines() if line.startswith("trained")][-1])
    return seconds, usage.ru_maxrss / 1024


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--memory-limit", default="800MB")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fraud-dagster-cluster-benchmark")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    base_file = write_base_file(args.workdir, args.rows)
    print(f"{args.rows:,} rows, {base_file.stat().st_size / 2**20:,.0f} MB of CSV; "
          f"about {args.rows * 31 * 8 / 2**20:,.0f} MB as float64; worker limit {args.memory_limit}")
    seconds, peak = timed_run(base_file, args.workdir / "one-process", None)
    print(f"one process        : {seconds:7.1f} s  run process peak {peak:,.0f} MB")

    from distributed import Client

    from fraud_assets_tests.services.dask_cluster import LocalDaskCluster

    cluster = LocalDaskCluster(Path(tempfile.mkdtemp(dir=args.workdir)), workers=args.workers,
                               memory_limit=args.memory_limit)
    try:
        seconds, peak = timed_run(base_file, args.workdir / "cluster", cluster.address)
        with Client(cluster.address, timeout=30, set_as_default=False) as client:
            workers = sorted(client.run(_peak_rss_mb).values())
    finally:
        cluster.stop()
    print(f"{args.workers} worker(s)        : {seconds:7.1f} s  run process peak {peak:,.0f} MB  "
          f"worker peaks {', '.join(f'{p:,.0f}' for p in workers)} MB")


if __name__ == "__main__":
    main()
