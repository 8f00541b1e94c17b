"""``fraud train`` on a real Dask cluster (scheduler and workers as subprocesses on 127.0.0.1)
reading its data from the local S3 server."""

from __future__ import annotations

import json

import boto3
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraud_assets.cli.main import main
from fraud_assets.core.cluster.training import ENGINE
from fraud_assets.core.data.schema import FEATURE_COLUMNS, LABEL
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.cli.test_cli import LOCAL

pytestmark = [pytest.mark.dask, pytest.mark.integration, pytest.mark.timeout(600)]

BUCKET = "cluster-training"


def _run(*argv) -> None:
    try:
        main([str(a) for a in argv])
    except SystemExit as done:
        assert not done.code, done.code


@pytest.fixture(scope="module")
def s3_data(s3_endpoint):
    """120k labelled rows in three files (CSV and Parquet), and a later held-out file."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    frame = generate_transactions(120_000, seed=21, fraud_rate=0.01)
    for name, part in (("a.csv", frame.iloc[:40_000]), ("b.parquet", frame.iloc[40_000:80_000]),
                       ("c.csv", frame.iloc[80_000:])):
        part = part.reset_index(drop=True)
        body = part.to_parquet() if name.endswith(".parquet") else part.to_csv(index=False).encode()
        s3.put_object(Bucket=BUCKET, Key=f"train/{name}", Body=body)
    held_out = generate_transactions(60_000, seed=22, fraud_rate=0.01, start_day=2, n_days=1)
    return f"s3://{BUCKET}/train/", held_out


def _held_out_ap(model_dir, held_out) -> float:
    model = FraudModel.load(LOCAL, str(model_dir))
    scores = model.predict_proba(held_out.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32))
    return float(average_precision_score(held_out[LABEL].to_numpy(), scores))


def test_cluster_training_matches_one_process_in_quality(dask_cluster, s3_data, s3_endpoint, tmp_path,
                                                         monkeypatch):
    data, held_out = s3_data
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.delenv("FRAUD_DASK_SCHEDULER", raising=False)
    _run("train", "--data", data, "--output-dir", tmp_path / "one-process")
    monkeypatch.setenv("FRAUD_DASK_SCHEDULER", dask_cluster.address)
    _run("train", "--data", data, "--output-dir", tmp_path / "cluster")

    manifest = json.loads((tmp_path / "cluster" / "manifest.json").read_text())
    assert manifest["training"]["engine"] == ENGINE and manifest["training"]["workers"] == 2
    single = json.loads((tmp_path / "one-process" / "manifest.json").read_text())
    # The same policy: the weight from the training split, early stopping, the bundle's files.
    assert manifest["data"]["train"]["rows"] == pytest.approx(single["data"]["train"]["rows"], rel=0.01)
    assert manifest["training"]["scale_pos_weight"] == pytest.approx(
        single["training"]["scale_pos_weight"], rel=0.05)
    gap = _held_out_ap(tmp_path / "cluster", held_out) - _held_out_ap(tmp_path / "one-process", held_out)
    print(f"held-out AP gap, cluster minus one process: {gap:+.4f}")
    assert abs(gap) <= 0.01


def test_a_bad_file_on_the_cluster_is_refused_as_in_one_process(dask_cluster, s3_endpoint, monkeypatch,
                                                                 tmp_path, capsys):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="cluster-bad")
    frame = generate_transactions(5000, seed=3, fraud_rate=0.02).astype({"V7": object})
    frame.loc[1234, "V7"] = "n/a"
    s3.put_object(Bucket="cluster-bad", Key="train/bad.csv", Body=frame.to_csv(index=False).encode())
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("FRAUD_DASK_SCHEDULER", dask_cluster.address)
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["train", "--data", "s3://cluster-bad/train/", "--output-dir", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert "s3://cluster-bad/train/bad.csv" in err and "'V7'" in err and "data row 1235" in err
    assert not (tmp_path / "m").exists()
