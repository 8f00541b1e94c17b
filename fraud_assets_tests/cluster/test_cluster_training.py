"""``fraud train`` on a real Dask cluster (scheduler and workers as subprocesses on 127.0.0.1)
reading its data from the local S3 server."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import boto3
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraud_assets.cli.main import main
from fraud_assets.core.cluster import training as cluster_training
from fraud_assets.core.cluster.training import ENGINE
from fraud_assets.core.data.schema import FEATURE_COLUMNS, LABEL
from fraud_assets.core.model.bundle import FraudModel
from fraud_assets.synthetic.generate import generate_transactions
from fraud_assets_tests.cli.test_cli import LOCAL
from fraud_assets_tests.cluster.test_cluster_scoring import _run as _exit_code
from fraud_assets_tests.services.dask_cluster import LocalDaskCluster

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
    monkeypatch.setenv("FRAUD_REFIT", "on")  # the suite turns it off for speed; the default is on
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
    # Both refit early stopping's rounds on train and validation before shipping.
    for name, trained in (("cluster", manifest), ("one-process", single)):
        refit, counts = trained["training"]["refit"], trained["data"]
        assert refit["rows"] == counts["train"]["rows"] + counts["validation"]["rows"]
        assert refit["rounds"] == trained["training"]["best_iteration"] + 1
        assert FraudModel.load(LOCAL, str(tmp_path / name)).booster.num_boosted_rounds() == refit["rounds"]
        # The score reference for drift: the refitted model on the test rows it never saw.
        assert trained["drift_reference"]["score"]["rows"] == counts["test"]["rows"]
    gap = _held_out_ap(tmp_path / "cluster", held_out) - _held_out_ap(tmp_path / "one-process", held_out)
    print(f"held-out AP gap, cluster minus one process: {gap:+.4f}")
    assert abs(gap) <= 0.01


def test_the_search_runs_on_a_sample_one_worker_holds_and_its_choice_trains_on_all_rows(
        dask_cluster, s3_data, s3_endpoint, tmp_path, monkeypatch):
    data, _ = s3_data
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("FRAUD_DASK_SCHEDULER", dask_cluster.address)
    monkeypatch.setattr(cluster_training, "SEARCH_SAMPLE_ROWS", 40_000)
    _run("train", "--data", data, "--output-dir", tmp_path, "--search-budget", 20, "--search-trials", 3,
         "--seed", 4)

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    search, training, counts = manifest["search"], manifest["training"], manifest["data"]
    assert training["engine"] == ENGINE and search["seed"] == 4
    assert 1 <= len(search["trials"]) <= 3
    # A sample of the train and validation rows, drawn at the share that gives about 40k rows.
    held = counts["train"]["rows"] + counts["validation"]["rows"]
    assert search["sample"]["share"] == pytest.approx(40_000 / held, rel=1e-3)
    assert search["sample"]["rows"] == pytest.approx(40_000, rel=0.1)
    assert 0 < search["sample"]["validation_frauds"] < counts["validation"]["frauds"]
    # What the search chose is what trained on all the rows.
    for name, value in search["chosen"].items():
        assert training[name] == (pytest.approx(value) if isinstance(value, float) else value), name


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


def _train_until_worker_0_joins(cluster, data, model_dir) -> tuple[threading.Thread, list]:
    """``fraud train`` in a thread, returned once worker-0 is inside XGBoost's collective
    (which logs each worker joining it); the list receives the exit code."""
    log = cluster.folder / "worker-0.log"
    joined_before = log.read_text(errors="replace").count("got rank")
    outcome: list = []
    run = threading.Thread(target=lambda: outcome.append(
        _exit_code("train", "--data", data, "--output-dir", model_dir)))
    run.start()
    deadline = time.monotonic() + 300
    while log.read_text(errors="replace").count("got rank") == joined_before:
        assert time.monotonic() < deadline and run.is_alive(), "training never reached the workers"
        time.sleep(0.05)
    return run, outcome


def test_a_worker_killed_during_training_is_survived(dask_cluster, s3_data, s3_endpoint, tmp_path, monkeypatch):
    data, held_out = s3_data
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("FRAUD_DASK_SCHEDULER", dask_cluster.address)
    run, outcome = _train_until_worker_0_joins(dask_cluster, data, tmp_path / "model")
    try:
        os.killpg(dask_cluster.workers[0].pid, signal.SIGKILL)
        killed_while_running = run.is_alive()
        run.join(timeout=400)
    finally:
        dask_cluster.workers[0] = dask_cluster.add_worker(0)
        dask_cluster.wait_for_workers(2)
    assert killed_while_running
    assert outcome == [0]
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    # Trained again, whole, on the worker that was left.
    assert manifest["training"]["workers"] == 1
    assert _held_out_ap(tmp_path / "model", held_out) > 0.8


@pytest.fixture
def impatient_cluster(tmp_path_factory, s3_endpoint):
    # The production scheduler's worker-ttl (deployment/, docs/dask.md) shortened further, so
    # a worker that stops answering is removed within seconds.
    cluster = LocalDaskCluster(tmp_path_factory.mktemp("dask-ttl"), workers=2, memory_limit="1GB",
                               worker_ttl="8s")
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_worker_that_hangs_during_training_is_left_behind(impatient_cluster, s3_data, s3_endpoint, tmp_path,
                                                            monkeypatch, caplog):
    # A frozen worker, nanny included (a host paused or swapping), keeps its sockets open: its
    # peer blocks inside XGBoost's collective and, unless restarted, waits out the collective's
    # timeout (30 minutes). The scheduler drops the frozen one once its heartbeats stop.
    data, held_out = s3_data
    cluster = impatient_cluster
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("FRAUD_DASK_SCHEDULER", cluster.address)
    victim = cluster.workers[0]
    run, outcome = _train_until_worker_0_joins(cluster, data, tmp_path / "model")
    try:
        os.killpg(victim.pid, signal.SIGSTOP)
        # Far less than the collective's timeout: the guard against waiting it out.
        run.join(timeout=400)
        finished = not run.is_alive()
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
    assert finished, "the training waited on the frozen worker"
    assert outcome == [0]
    assert "training again on the workers that remain" in caplog.text
    assert "still blocked in the training the lost worker left" in caplog.text
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["training"]["workers"] == 1
    assert _held_out_ap(tmp_path / "model", held_out) > 0.8
