"""What MLflow tracking adds to a training: importing MLflow, the embedded SQLite store's
first-use migrations, and logging one run (params, metrics, bundle, model version).

    .venv/bin/python benchmarks/tracking_overhead.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fsspec

from fraud_assets.core.data.features import fit_preprocessor
from fraud_assets.core.data.splits import split_transactions
from fraud_assets.core.model.training import TrainingConfig, train_fraud_model
from fraud_assets.core.tracking.tracker import Tracker
from fraud_assets.synthetic.generate import generate_transactions


def import_seconds() -> float:
    done = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import mlflow; "
                           "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True)
    return float(done.stdout)


def main() -> None:
    print(f"import mlflow: {import_seconds():.2f} s (fresh interpreter)")
    frame = generate_transactions(30_000, seed=0, fraud_rate=0.01)
    splits = split_transactions(frame, strategy="time", seed=0)
    model = train_fraud_model(splits, fit_preprocessor(splits.train), TrainingConfig(n_estimators=60))
    local = fsspec.filesystem("file")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        tracker = Tracker(uri=f"sqlite:///{root / 'mlflow.db'}", experiment="bench", model_name="bench",
                          artifact_location=(root / "artifacts").as_uri())
        started = time.perf_counter()
        tracker.client().search_experiments()
        print(f"first use of a new SQLite store (migrations): {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        model.save(local, str(root / "plain"))
        plain = time.perf_counter() - started
        for attempt in range(3):
            started = time.perf_counter()
            tracker.track_training(model, lambda a=attempt: model.save(local, str(root / f"tracked{a}")))
            print(f"tracked save {attempt + 1}: {time.perf_counter() - started:.2f} s (plain save {plain:.2f} s)")


if __name__ == "__main__":
    main()
