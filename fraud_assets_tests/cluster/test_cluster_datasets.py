"""What one worker task writes for the training dataset, read in parts smaller than its files:
the same rows and labels, in the same order, as one process reads whole files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_assets.core.cluster.datasets import CopyJob, _copy_one
from fraud_assets.core.data.labels import batch_rows, with_labels
from fraud_assets.core.data.schema import LABEL
from fraud_assets.core.data.splits import DAY_COLUMN
from fraud_assets.core.data.tables import read_transactions, write_table
from fraud_assets.synthetic.generate import generate_transactions

DAY = "2025-03-04"


def _parts(folder) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)


def test_a_batch_read_in_parts_is_labelled_row_for_row_as_one_process_labels_it(tmp_path):
    truth = generate_transactions(2_500, seed=7, start_day=3, n_days=1, fraud_rate=0.05)
    # Named by row number (no id column), Parquet, with a column beyond the schema.
    batch = truth.drop(columns=[LABEL]).assign(channel="web")
    path = str(tmp_path / f"{DAY}_batch.parquet")
    write_table(batch, path)
    frauds = np.flatnonzero(truth[LABEL].to_numpy() == 1)
    labels = pd.DataFrame({"batch_file": f"{DAY}_batch", "transaction_id": frauds.astype(str), LABEL: 1})

    counts = _copy_one(CopyJob(path, stem=f"1-{DAY}-00000", day=DAY, part_rows=700), labels,
                       str(tmp_path / "parts"), {})
    written = _parts(tmp_path / "parts")
    assert len(list((tmp_path / "parts").glob("*.parquet"))) == 4  # 700 + 700 + 700 + 400 rows

    whole = batch_rows(read_transactions(path, require_label=False), path)
    expected = with_labels(whole, labels)
    assert written[LABEL].tolist() == expected.tolist() == truth[LABEL].astype(int).tolist()
    assert (written[DAY_COLUMN] == DAY).all() and "channel" not in written.columns
    np.testing.assert_array_equal(written["V1"].to_numpy(), truth["V1"].to_numpy())
    assert counts == {"rows": 2_500, "frauds": len(frauds), "time_min": float(truth["Time"].min()),
                      "time_max": float(truth["Time"].max())}
