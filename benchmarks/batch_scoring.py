"""Batch scoring benchmark: `fraud score` against the plain pandas/scikit-learn way and the read floor.

Run from the repository root:

    .venv/bin/python benchmarks/batch_scoring.py            # everything (~15 min on 2 cores)
    .venv/bin/python benchmarks/batch_scoring.py --quick    # 1M rows only: no 10M run, no demo

What it does, each measured command in a fresh process (wall time and that process's peak
RSS, from ``os.wait4``), repeated ``--repeat`` times, medians reported:

* trains a model on 284,807 generated labelled rows with the default ``TrainingConfig``
  (early stopping, threshold search), timing it, unless ``--reuse-model`` finds one cached;
* writes 1,000,000 unlabelled rows as CSV and Parquet (cached under ``--workdir``);
* (a) ``fraud score`` CSV -> CSV and Parquet -> Parquet;
* (b) the plain way: ``pandas.read_csv`` -> a fitted scikit-learn ``Pipeline`` (the same
  features, ``StandardScaler``) -> ``XGBClassifier.predict_proba`` with the same booster
  -> ``DataFrame.to_csv`` (``read_parquet``/``to_parquet`` for Parquet);
* (c) the floor: pyarrow's streaming reader over the whole input, batches discarded
  (the reader configuration that (a) uses), plus pyarrow's whole-file ``read_csv`` for reference;
* checks that (a)'s probabilities equal, exactly, ``FraudModel.predict_proba`` on the file read
  with pandas (the pre-optimisation path), and that CSV and Parquet outputs agree;
* scores a 10,000,000-row file written in pieces (never held in memory) and reports peak RSS;
* runs ``fraud demo`` twice in a scratch folder and breaks the warm run down by step.

Only the standard library is imported at the top: the worker modes (``_plain``, ``_floor``,
...) run in their own processes and import just what they measure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
TRAINING_ROWS = 284_807
SECONDS_PER_DAY = 86_400
PIECE_ROWS = 1_000_000  # generated and written a million rows at a time

TARGETS = {
    "csv_speedup_vs_plain": 1.7,  # (b) / (a) at least
    "csv_vs_floor": 1.3,  # (a) / (c) at most
    "rss_share_of_plain": 0.40,  # RSS(a) / RSS(b) at most
    "big_rss_mb": 1024,  # 10M rows
    "training_s": 60,
    "demo_s": 90,
}


# --------------------------------------------------------------------------- the plain way (b)


def engineer_features(frame):
    """The model's features as a guide reader would write them: V1..V28, log1p(Amount) and the
    hour of day on a circle. Module level, so the fitted pipeline pickles by reference."""
    import numpy as np

    pca = frame[[f"V{i}" for i in range(1, 29)]].to_numpy(dtype=np.float64)
    angle = (frame["Time"].to_numpy(dtype=np.float64) % SECONDS_PER_DAY) * (
        2 * np.pi / SECONDS_PER_DAY
    )
    amount = np.log1p(frame["Amount"].to_numpy(dtype=np.float64))
    return np.column_stack([pca, amount, np.sin(angle), np.cos(angle)])


def plain_score(input_path: str, output_path: str, workdir: str) -> None:
    """(b): pandas -> scikit-learn -> XGBClassifier -> pandas, with the cached model."""
    import joblib
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    work = Path(workdir)
    pipeline = joblib.load(work / "plain_pipeline.joblib")
    manifest = json.loads((work / "model" / "manifest.json").read_text())
    classifier = xgb.XGBClassifier()
    classifier.load_model(str(work / "model" / "model.ubj"))

    frame = pd.read_csv(input_path) if input_path.endswith(".csv") else pd.read_parquet(input_path)
    probability = classifier.predict_proba(pipeline.transform(frame))[:, 1]
    # The booster was trained with frauds up-weighted by w; FraudModel subtracts log(w) from the
    # margin. p / (p + (1 - p) * w) is the same correction on the probability scale.
    weight = math.exp(manifest["log_odds_correction"])
    probability = (probability / (probability + (1.0 - probability) * weight)).astype(np.float32)
    out = pd.DataFrame(
        {
            "transaction_id": np.arange(len(frame)),
            "fraud_probability": probability,
            "is_fraud": probability >= manifest["threshold"],
            "model_version": manifest["version"],
        }
    )
    if output_path.endswith(".csv"):
        out.to_csv(output_path, index=False)
    else:
        out.to_parquet(output_path, index=False)


# --------------------------------------------------------------------------- worker modes


def floor_read(input_path: str, whole: str) -> None:
    """(c): read the input and discard it. Streaming uses the reader settings of (a)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    # The reader's own settings (tables imports pyarrow, not pandas).
    from fraud_assets.core.data.tables import CSV_BLOCK_BYTES, PARQUET_BUFFER_BYTES, SLAB_ROWS

    rows = 0
    if input_path.endswith(".parquet"):
        parquet = pq.ParquetFile(input_path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
        for batch in parquet.iter_batches(batch_size=SLAB_ROWS):
            rows += batch.num_rows
    else:
        with open(input_path, "rb") as handle:
            names = handle.readline().decode().strip().replace('"', "").split(",")
        convert = pa_csv.ConvertOptions(column_types={name: pa.float64() for name in names})
        if whole == "whole":
            rows = pa_csv.read_csv(input_path, convert_options=convert).num_rows
        else:
            reader = pa_csv.open_csv(
                input_path, read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                convert_options=convert,
            )
            for batch in reader:
                rows += batch.num_rows
    print(rows)


def train_and_cache(workdir: str, save: str = "save") -> None:
    """Train at the ULB size with the default config; cache the model and the plain pipeline
    (``save="time-only"``: just time the training)."""
    import fsspec
    import joblib
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from fraud_assets.core.data.features import fit_preprocessor
    from fraud_assets.core.data.splits import split_transactions
    from fraud_assets.core.model.training import TrainingConfig, train_fraud_model
    from fraud_assets.synthetic.generate import generate_transactions

    work = Path(workdir)
    started = time.perf_counter()
    frame = generate_transactions(TRAINING_ROWS, seed=1, start_day=0, n_days=2)
    splits = split_transactions(frame, strategy="time")
    generated = time.perf_counter()
    preprocessor = fit_preprocessor(splits.train)
    model = train_fraud_model(splits, preprocessor, TrainingConfig())
    trained = time.perf_counter()
    if save == "save":
        model.save(fsspec.filesystem("file"), str(work / "model"))
        pipeline = make_pipeline(FunctionTransformer(engineer_features), StandardScaler())
        pipeline.fit(splits.train)
        joblib.dump(pipeline, work / "plain_pipeline.joblib")
    summary = {
        "rows": TRAINING_ROWS,
        "generate_and_split_s": round(generated - started, 2),
        "train_s": round(trained - generated, 2),
        "boosting_s": model.manifest["training"]["training_seconds"],
        "best_iteration": model.manifest["training"]["best_iteration"],
        "test_auprc": model.metrics["test"]["auprc"],
        "test_roc_auc": model.metrics["test"]["roc_auc"],
        "model_version": model.version,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
    }
    print(json.dumps(summary))


def write_batches(path: str, rows: int, fmt: str) -> None:
    """Unlabelled rows in the creditcard.csv schema, a million at a time, straight to disk."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from fraud_assets.synthetic.generate import generate_transactions

    temporary = path + ".partial"
    writer = None
    for piece, start in enumerate(range(0, rows, PIECE_ROWS)):
        frame = generate_transactions(
            min(PIECE_ROWS, rows - start), seed=100 + piece, start_day=2 + piece, n_days=1,
            labels=False,
        )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        del frame
        if writer is None:
            writer = (
                pa_csv.CSVWriter(temporary, table.schema) if fmt == "csv"
                else pq.ParquetWriter(temporary, table.schema, compression="snappy")
            )
        writer.write_table(table)
    writer.close()
    os.replace(temporary, path)


def predict_alone(workdir: str, input_path: str) -> None:
    """XGBoost alone: the model on 1M rows already in memory, as (a) calls it."""
    import fsspec
    import numpy as np
    import pyarrow.parquet as pq

    from fraud_assets.core.data.schema import FEATURE_COLUMNS
    from fraud_assets.core.model.bundle import FraudModel

    model = FraudModel.load(fsspec.filesystem("file"), str(Path(workdir) / "model"))
    table = pq.read_table(input_path, columns=list(FEATURE_COLUMNS))
    raw = np.column_stack([table.column(c).to_numpy() for c in FEATURE_COLUMNS]).astype(np.float32)
    del table
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        model.predict_proba(raw)
        best = min(best, time.perf_counter() - started)
    print(json.dumps({"predict_s": round(best, 3), "trees": model.booster.num_boosted_rounds()}))


def check_outputs(workdir: str, input_path: str, a_csv: str, a_parquet: str, b_csv: str,
                  baseline_csv: str = "", baseline_parquet: str = "") -> None:
    """(a) must equal the pre-optimisation path exactly; (b) is compared for information.

    With a baseline run's outputs, (a)'s must also be identical to them: the CSV byte for byte,
    the Parquet as tables (values, types and schema metadata)."""
    import fsspec
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from fraud_assets.core.data.schema import feature_matrix
    from fraud_assets.core.model.bundle import FraudModel

    model = FraudModel.load(fsspec.filesystem("file"), str(Path(workdir) / "model"))
    # The original scoring path: pandas frame -> float32 matrix -> FraudModel.predict_proba.
    frame = pd.read_csv(input_path)
    expected = model.predict_proba(feature_matrix(frame))
    del frame

    def probabilities(path: str) -> np.ndarray:
        if path.endswith(".parquet"):
            column = pq.read_table(path, columns=["fraud_probability"]).column(0)
        else:
            column = pa_csv.read_csv(
                path, convert_options=pa_csv.ConvertOptions(
                    include_columns=["fraud_probability"],
                    column_types={"fraud_probability": pa.float32()},
                ),
            ).column(0)
        return column.to_numpy()

    got_csv, got_parquet, plain = (probabilities(p) for p in (a_csv, a_parquet, b_csv))
    assert len(got_csv) == len(expected), (len(got_csv), len(expected))
    assert np.array_equal(got_csv, expected), "fraud score CSV differs from the original path"
    assert np.array_equal(got_parquet, expected), "fraud score Parquet differs from the original path"
    same_as_baseline = None
    if baseline_csv:
        assert Path(a_csv).read_bytes() == Path(baseline_csv).read_bytes(), "CSV differs from baseline"
        new, old = pq.read_table(a_parquet), pq.read_table(baseline_parquet)
        assert new.equals(old) and new.schema.equals(old.schema, check_metadata=True), (
            "Parquet differs from baseline")
        same_as_baseline = True
    flagged = expected >= model.threshold
    print(json.dumps({
        "rows_compared": len(expected),
        "a_equals_original_exactly": True,
        "identical_to_baseline_outputs": same_as_baseline,
        "flagged": int(flagged.sum()),
        "plain_max_abs_diff": float(np.abs(plain.astype(np.float64) - expected).max()),
        "plain_flag_disagreements": int(((plain >= model.threshold) != flagged).sum()),
    }))


def demo_breakdown(folder: str) -> None:
    """Step timings of the latest run in the demo folder's instance, from its event log."""
    os.chdir(folder)
    from dagster import DagsterEventType

    from fraud_assets.cli.demo import local_instance

    with local_instance(Path(folder)) as instance:
        run = instance.get_run_records(limit=1)[0].dagster_run
        logs = instance.all_logs(run.run_id)
        marks, starts, steps = {}, {}, []
        for entry in logs:
            if not entry.is_dagster_event:
                continue
            kind = entry.dagster_event.event_type
            if kind in (DagsterEventType.RUN_START, DagsterEventType.RUN_SUCCESS,
                        DagsterEventType.RUN_FAILURE):
                marks[kind.value] = entry.timestamp
            elif kind == DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                steps.append([entry.step_key, round(entry.timestamp - starts[entry.step_key], 2)])
        print(json.dumps({
            "first_event": logs[0].timestamp,
            "run_start": marks.get("PIPELINE_START", marks.get("RUN_START")),
            "run_end": marks.get("PIPELINE_SUCCESS", marks.get("PIPELINE_FAILURE")),
            "steps": steps,
            "events": len(logs),
        }))


WORKERS = {
    "_plain": plain_score,
    "_floor": floor_read,
    "_train": train_and_cache,
    "_write": lambda path, rows, fmt: write_batches(path, int(rows), fmt),
    "_predict": predict_alone,
    "_check": check_outputs,
    "_demo_breakdown": demo_breakdown,
}


# --------------------------------------------------------------------------- measuring


def measure(command: list[str], *, cwd: Path | None = None, env: dict | None = None) -> dict:
    """Wall seconds and peak RSS (MiB) of one fresh process; its stdout, checked for success."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{text[-3000:]}")
    # ru_maxrss is in KiB on Linux. CPU seconds (user + system, all threads) show the work done,
    # which background load on a shared machine inflates less than wall time.
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "output": text}


def worker(mode: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE), mode, *args]


def baseline_env(source: str) -> dict:
    """Environment that imports ``fraud_assets`` from ``source`` (e.g. an older checkout)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(source).resolve()), *filter(None, [os.environ.get("PYTHONPATH")])]
    )}


def fraud_cli() -> list[str]:
    script = Path(sys.executable).with_name("fraud")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from fraud_assets.cli.main import main; main()"]


def repeated(cases: dict[str, list[str] | tuple[list[str], dict]], repeat: int) -> dict[str, dict]:
    """Run every case ``repeat`` times, interleaved so background load hits them alike.

    A case is a command, or (command, environment)."""
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for round_number in range(repeat):
        for name, case in cases.items():
            command, env = case if isinstance(case, tuple) else (case, None)
            result = measure(command, env=env)
            runs[name].append(result)
            print(f"  [{round_number + 1}/{repeat}] {name:<22} {result['wall_s']:7.2f} s "
                  f"{result['cpu_s']:7.2f} s CPU {result['rss_mb']:7.0f} MiB  load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    return {
        name: {
            "wall_s": statistics.median(r["wall_s"] for r in results),
            "best_wall_s": min(r["wall_s"] for r in results),
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "rss_mb": statistics.median(r["rss_mb"] for r in results),
            "output": results[-1]["output"],
        }
        for name, results in runs.items()
    }


def machine() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    free = shutil.disk_usage(tempfile.gettempdir()).free
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(total_kb / 2**20, 1),
        "disk_free_gib": round(free / 2**30, 1),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def ensure_model(work: Path, reuse: bool) -> dict:
    summary_path = work / "training.json"
    if reuse and summary_path.exists() and (work / "model" / "manifest.json").exists():
        print("reusing the cached model (its training time was measured when it was trained)")
        return json.loads(summary_path.read_text())
    print(f"training on {TRAINING_ROWS:,} generated rows (default TrainingConfig) ...", flush=True)
    result = measure(worker("_train", str(work)))
    summary = json.loads(result["output"].strip().splitlines()[-1])
    summary["process_wall_s"] = round(result["wall_s"], 2)
    # The `fraud` command sets OMP_WAIT_POLICY=PASSIVE (see fraud_assets/cli/commands.py):
    # time the same training with it, as `fraud train` and `fraud demo` run it.
    print("training again with OMP_WAIT_POLICY=PASSIVE, as the fraud command runs it ...",
          flush=True)
    passive = measure(worker("_train", str(work), "time-only"),
                      env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    passive_summary = json.loads(passive["output"].strip().splitlines()[-1])
    assert passive_summary["model_version"].rsplit("-", 1)[1] == summary["model_version"].rsplit(
        "-", 1)[1], "the wait policy changed the model"
    summary["passive_train_s"] = passive_summary["train_s"]
    summary["load_average_after"] = os.getloadavg()
    summary_path.write_text(json.dumps(summary, indent=2))
    return summary


def ensure_input(path: Path, rows: int, fmt: str) -> None:
    marker = path.with_name(path.name + ".rows")
    if path.exists() and marker.exists() and marker.read_text() == str(rows):
        return
    print(f"writing {rows:,} rows -> {path}", flush=True)
    started = time.perf_counter()
    measure(worker("_write", str(path), str(rows), fmt))
    marker.write_text(str(rows))
    print(f"  {time.perf_counter() - started:.1f} s, {path.stat().st_size / 2**20:,.0f} MiB")


def run_demo(folder: Path, baseline: str | None = None) -> dict:
    """`fraud demo` twice in a scratch folder: a cold run (generates data) and a warm one."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    env = {**(baseline_env(baseline) if baseline else os.environ), "FRAUD_LOCAL_DIR": str(folder)}
    env.pop("FRAUD_ENV", None)
    results = {}
    for label in ("cold", "warm"):
        print(f"fraud demo ({label}{', baseline code' if baseline else ''}) ...", flush=True)
        launched = time.time()
        result = measure([*fraud_cli(), "demo"], cwd=folder, env=env)
        results[label] = {"wall_s": result["wall_s"], "rss_mb": result["rss_mb"],
                          "launched": launched, "output": result["output"]}
        print(f"  {result['wall_s']:.1f} s")
    breakdown = json.loads(
        measure(worker("_demo_breakdown", str(folder)))["output"].strip().splitlines()[-1]
    )
    warm = results["warm"]
    breakdown["before_run_s"] = round(breakdown["first_event"] - warm["launched"], 2)
    breakdown["run_s"] = round(breakdown["run_end"] - breakdown["first_event"], 2)
    breakdown["after_run_s"] = round(warm["launched"] + warm["wall_s"] - breakdown["run_end"], 2)
    results["warm_breakdown"] = breakdown
    return results


# --------------------------------------------------------------------------- report


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def report(results: dict) -> list[str]:
    lines = []
    m = results["machine"]
    lines.append(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
                 f"{m['disk_free_gib']} GiB free in {tempfile.gettempdir()}, Python {m['python']}, "
                 f"load average at start {', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}")
    t = results["training"]
    lines.append(f"training ({t['rows']:,} rows, default config, early stopping and threshold "
                 f"search): {t['train_s']:.1f} s with OpenMP's default wait policy, "
                 f"{t.get('passive_train_s', math.nan):.1f} s with OMP_WAIT_POLICY=PASSIVE (as "
                 f"`fraud` runs it); best iteration {t['best_iteration']}, test AUPRC "
                 f"{t['test_auprc']:.4f}, ROC-AUC {t['test_roc_auc']:.4f} (target < "
                 f"{TARGETS['training_s']} s)")
    s = results["scoring"]
    rows = results["rows"]
    lines.append("")
    lines.append(f"{rows:,} rows, median of {results['repeat']} runs, each a fresh process:")
    lines.append(f"{'case':<38}{'wall s':>8}{'best s':>8}{'CPU s':>8}{'peak RSS MiB':>14}")
    labels = {
        "floor_csv": "(c) CSV streaming read (floor)",
        "floor_csv_whole": "    CSV read_csv into memory",
        "a_csv": "(a) fraud score CSV -> CSV",
        "b_csv": "(b) plain CSV -> CSV",
        "floor_parquet": "(c) Parquet streaming read",
        "a_parquet": "(a) fraud score Parquet -> Parquet",
        "b_parquet": "(b) plain Parquet -> Parquet",
        "a_csv_baseline": "    fraud score CSV, baseline code",
        "a_parquet_baseline": "    fraud score Parquet, baseline code",
        "cli_start": "    fraud score --help (its start-up)",
        "plain_imports": "    import pandas, sklearn, xgboost",
    }
    for name, label in labels.items():
        if name in s:
            lines.append(f"{label:<38}{s[name]['wall_s']:8.2f}{s[name]['best_wall_s']:8.2f}"
                         f"{s[name]['cpu_s']:8.2f}{s[name]['rss_mb']:14.0f}")
    if "predict" in results:
        lines.append(f"XGBoost predict_proba alone, {rows:,} rows in memory "
                     f"({results['predict']['trees']} trees): {results['predict']['predict_s']:.2f} s")
    for name in ("a_csv", "a_parquet"):
        stats = json.loads(s[name]["output"].strip().splitlines()[-1])
        lines.append(f"{name}: scoring inside the process {stats['seconds']:.2f} s "
                     f"(the rest of the wall time is start-up: imports, model load)")
    r = results["ratios"]
    lines.append("")
    lines.append(f"CSV speed-up (b)/(a):           {r['csv_speedup']:.2f}x  (target >= "
                 f"{TARGETS['csv_speedup_vs_plain']})")
    lines.append(f"CSV (a)/(c) floor:              {r['csv_vs_floor']:.2f}x  (target <= "
                 f"{TARGETS['csv_vs_floor']})")
    lines.append(f"CSV RSS (a)/(b):                {r['csv_rss_share']:.0%}  (target <= "
                 f"{TARGETS['rss_share_of_plain']:.0%})")
    lines.append(f"Parquet speed-up (b)/(a):       {r['parquet_speedup']:.2f}x")
    lines.append(f"Parquet (a)/(c) floor:          {r['parquet_vs_floor']:.2f}x")
    lines.append(f"Parquet RSS (a)/(b):            {r['parquet_rss_share']:.0%}")
    c = results["check"]
    lines.append(f"outputs: (a) equals FraudModel.predict_proba on the pandas-read file exactly, all "
                 f"{c['rows_compared']:,} rows (CSV and Parquet)"
                 + ("; identical to the baseline code's outputs (CSV bytes, Parquet tables)"
                    if c.get("identical_to_baseline_outputs") else ""))
    lines.append(f"(b) vs (a): max |probability difference| {c['plain_max_abs_diff']:.2e} (float64 "
                 f"vs float32 features), {c['plain_flag_disagreements']} is_fraud disagreement(s)")
    if "big" in results:
        b = results["big"]
        lines.append(f"{b['rows']:,} rows ({b['format']} in, {b['input_gib']:.1f} GiB): fraud score "
                     f"{b['wall_s']:.1f} s, peak RSS {b['rss_mb']:.0f} MiB (target < "
                     f"{TARGETS['big_rss_mb']} MiB){b.get('note', '')}")
        if "baseline" in b:
            lines.append(f"  baseline code: {b['baseline']['wall_s']:.1f} s, peak RSS "
                         f"{b['baseline']['rss_mb']:.0f} MiB")
    if "demo" in results:
        d = results["demo"]
        w = d["warm_breakdown"]
        lines.append(f"fraud demo: cold {d['cold']['wall_s']:.1f} s, warm {d['warm']['wall_s']:.1f} s "
                     f"(target < {TARGETS['demo_s']} s warm)")
        lines.append(f"  warm: {w['before_run_s']:.1f} s before the run's first event (imports, "
                     f"definitions, instance), {w['run_s']:.1f} s run, {w['after_run_s']:.1f} s after")
        for step, seconds in w["steps"]:
            lines.append(f"    {step:<44}{seconds:7.2f} s")
    if "demo_baseline" in results:
        d = results["demo_baseline"]
        lines.append(f"fraud demo, baseline code: cold {d['cold']['wall_s']:.1f} s, warm "
                     f"{d['warm']['wall_s']:.1f} s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000,
                        help="Rows for the peak-RSS run (0: skip).")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "fraud-batch-benchmark"),
                        help="Cache for the model and inputs (outside the repository).")
    parser.add_argument("--reuse-model", action="store_true",
                        help="Reuse the cached model instead of training (and timing) a new one.")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--quick", action="store_true", help="Same as --big-rows 0 --no-demo.")
    parser.add_argument("--keep", action="store_true", help="Keep the big inputs and outputs.")
    parser.add_argument("--json", help="Also write the results here.")
    parser.add_argument("--baseline", metavar="DIR",
                        help="Also run `fraud score` with the fraud_assets package in DIR (e.g. a "
                             "checkout of the previous version) for a before/after comparison.")
    args = parser.parse_args()
    if args.quick:
        args.big_rows, args.no_demo = 0, True

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "rows": args.rows, "repeat": args.repeat}
    print(json.dumps(results["machine"]))
    results["training"] = ensure_model(work, args.reuse_model)

    csv_in, parquet_in = work / f"batch_{args.rows}.csv", work / f"batch_{args.rows}.parquet"
    ensure_input(csv_in, args.rows, "csv")
    ensure_input(parquet_in, args.rows, "parquet")
    out = work / "out"
    out.mkdir(exist_ok=True)
    model_dir = str(work / "model")
    fraud = fraud_cli()
    cases = {
        "floor_csv": worker("_floor", str(csv_in), "stream"),
        "floor_csv_whole": worker("_floor", str(csv_in), "whole"),
        "a_csv": [*fraud, "score", "--model-dir", model_dir, "--input", str(csv_in),
                  "--output", str(out / "a.csv")],
        "b_csv": worker("_plain", str(csv_in), str(out / "b.csv"), str(work)),
        "floor_parquet": worker("_floor", str(parquet_in), "stream"),
        "a_parquet": [*fraud, "score", "--model-dir", model_dir, "--input", str(parquet_in),
                      "--output", str(out / "a.parquet")],
        "b_parquet": worker("_plain", str(parquet_in), str(out / "b.parquet"), str(work)),
        "cli_start": [*fraud, "score", "--help"],
        "plain_imports": [sys.executable, "-c", "import pandas, sklearn, xgboost"],
    }
    if args.baseline:
        before = baseline_env(args.baseline)
        cases["a_csv_baseline"] = (
            [*fraud, "score", "--model-dir", model_dir, "--input", str(csv_in),
             "--output", str(out / "before.csv")], before)
        cases["a_parquet_baseline"] = (
            [*fraud, "score", "--model-dir", model_dir, "--input", str(parquet_in),
             "--output", str(out / "before.parquet")], before)
    print(f"measuring {len(cases)} cases x {args.repeat} ...", flush=True)
    s = results["scoring"] = repeated(cases, args.repeat)
    results["ratios"] = {
        "csv_speedup": ratio(s["b_csv"]["wall_s"], s["a_csv"]["wall_s"]),
        "csv_vs_floor": ratio(s["a_csv"]["wall_s"], s["floor_csv"]["wall_s"]),
        "csv_rss_share": ratio(s["a_csv"]["rss_mb"], s["b_csv"]["rss_mb"]),
        "parquet_speedup": ratio(s["b_parquet"]["wall_s"], s["a_parquet"]["wall_s"]),
        "parquet_vs_floor": ratio(s["a_parquet"]["wall_s"], s["floor_parquet"]["wall_s"]),
        "parquet_rss_share": ratio(s["a_parquet"]["rss_mb"], s["b_parquet"]["rss_mb"]),
    }
    results["predict"] = json.loads(
        measure(worker("_predict", str(work), str(parquet_in)))["output"].strip().splitlines()[-1]
    )
    print("checking outputs ...", flush=True)
    baseline_outputs = [str(out / "before.csv"), str(out / "before.parquet")] if args.baseline else []
    results["check"] = json.loads(measure(worker(
        "_check", str(work), str(csv_in), str(out / "a.csv"), str(out / "a.parquet"),
        str(out / "b.csv"), *baseline_outputs,
    ))["output"].strip().splitlines()[-1])

    if args.big_rows:
        results["big"] = run_big(work, args.big_rows, model_dir, fraud, keep=args.keep,
                                 baseline=args.baseline)
    if not args.no_demo:
        with tempfile.TemporaryDirectory(prefix="fraud-demo-bench-") as folder:
            results["demo"] = run_demo(Path(folder))
        if args.baseline:
            with tempfile.TemporaryDirectory(prefix="fraud-demo-bench-") as folder:
                results["demo_baseline"] = run_demo(Path(folder), args.baseline)

    print()
    lines = report(results)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def run_big(work: Path, rows: int, model_dir: str, fraud: list[str], *, keep: bool,
            baseline: str | None = None) -> dict:
    """Peak RSS of `fraud score` on a file far larger than a chunk (written piece by piece)."""
    need = rows * 600 * 1.2  # ~570 bytes a row as CSV, plus the predictions
    free = shutil.disk_usage(work).free
    fmt, note = "csv", ""
    if free < need:
        fmt, note = "parquet", f" (Parquet input: {free / 2**30:.0f} GiB free is short for CSV)"
    source = work / f"batch_{rows}.{fmt}"
    ensure_input(source, rows, fmt)
    output = work / "out" / f"big.{fmt}"
    print(f"fraud score on {rows:,} rows ...", flush=True)
    result = measure([*fraud, "score", "--model-dir", model_dir, "--input", str(source),
                      "--output", str(output)])
    summary = {"rows": rows, "format": fmt, "input_gib": source.stat().st_size / 2**30,
               "wall_s": result["wall_s"], "cpu_s": result["cpu_s"], "rss_mb": result["rss_mb"],
               "note": note}
    if baseline:
        print(f"fraud score on {rows:,} rows, baseline code ...", flush=True)
        before = measure([*fraud, "score", "--model-dir", model_dir, "--input", str(source),
                          "--output", str(output)], env=baseline_env(baseline))
        summary["baseline"] = {"wall_s": before["wall_s"], "cpu_s": before["cpu_s"],
                               "rss_mb": before["rss_mb"]}
    if not keep:
        for path in (source, source.with_name(source.name + ".rows"), output):
            path.unlink(missing_ok=True)
    return summary


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in WORKERS:
        WORKERS[sys.argv[1]](*sys.argv[2:])
    else:
        main()
