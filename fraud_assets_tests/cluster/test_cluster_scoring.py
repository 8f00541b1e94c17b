"""``fraud score`` of many S3 files across real Dask workers: the outputs of one process."""

from __future__ import annotations

import os
import signal
import threading
import time

import boto3
import pytest

from fraud_assets.cli.main import main
from fraud_assets.synthetic.generate import generate_transactions

pytestmark = [pytest.mark.dask, pytest.mark.integration, pytest.mark.timeout(600)]

BUCKET = "cluster-scoring"
FILES = [f"day-{n:02d}.{'parquet' if n % 3 == 0 else 'csv'}" for n in range(12)]


def _run(*argv) -> int:
    try:
        main([str(a) for a in argv])
    except SystemExit as done:
        return done.code or 0
    return 0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    generate_transactions(30_000, seed=31, fraud_rate=0.01).to_csv(folder / "train.csv", index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FRAUD_DASK_SCHEDULER", raising=False)
        assert _run("train", "--data", folder / "train.csv", "--output-dir", folder / "model") == 0
    return folder / "model"


@pytest.fixture(scope="module")
def batches(s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    for number, name in enumerate(FILES):
        frame = generate_transactions(40_000, seed=100 + number, labels=False, start_day=2, n_days=1)
        body = frame.to_parquet() if name.endswith(".parquet") else frame.to_csv(index=False).encode()
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{name}", Body=body)
    return f"s3://{BUCKET}/incoming/*"


@pytest.fixture(scope="module")
def one_process_outputs(model_dir, batches, s3_endpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-process")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
        patch.delenv("FRAUD_DASK_SCHEDULER", raising=False)
        assert _run("score", "--model-dir", model_dir, "--input", batches, "--output", out) == 0
    return out


@pytest.fixture
def on_cluster(monkeypatch, dask_cluster, s3_endpoint):
    monkeypatch.setenv("FRAUD_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("FRAUD_DASK_SCHEDULER", dask_cluster.address)


def _assert_same_outputs(out, expected) -> None:
    for name in FILES:
        assert (out / name).read_bytes() == (expected / name).read_bytes(), name


def test_files_scored_across_workers_equal_one_process(on_cluster, model_dir, batches, tmp_path,
                                                       one_process_outputs):
    assert _run("score", "--model-dir", model_dir, "--input", batches, "--output", tmp_path) == 0
    _assert_same_outputs(tmp_path, one_process_outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*FILES, "inference_stats.json"])


def test_a_worker_killed_mid_run_is_survived(on_cluster, dask_cluster, model_dir, batches, tmp_path,
                                             one_process_outputs):
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(
        _run("score", "--model-dir", model_dir, "--input", batches, "--output", tmp_path)))
    run.start()
    deadline = time.monotonic() + 120
    while not any(p.suffix in (".csv", ".parquet") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and run.is_alive(), "scoring never started"
        time.sleep(0.05)
    victim = dask_cluster.workers[0]
    os.killpg(victim.pid, signal.SIGKILL)  # the nanny and its worker, mid-run
    killed_while_running = run.is_alive()
    run.join(timeout=300)
    try:
        assert killed_while_running
        assert codes == [0]
        _assert_same_outputs(tmp_path, one_process_outputs)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
        assert leftovers == [] or all(".tmp-" in name for name in leftovers)
    finally:
        dask_cluster.workers[0] = dask_cluster.add_worker(0)


def test_a_refused_file_on_the_cluster_leaves_the_others_scored(on_cluster, model_dir, s3_endpoint, tmp_path,
                                                                capsys):
    import json

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=f"{BUCKET}-mixed")
    frame = generate_transactions(3_000, seed=7, labels=False, start_day=2, n_days=1)
    s3.put_object(Bucket=f"{BUCKET}-mixed", Key="mixed/good.csv", Body=frame.to_csv(index=False).encode())
    s3.put_object(Bucket=f"{BUCKET}-mixed", Key="mixed/bad.csv",
                  Body=frame.drop(columns=["V7"]).to_csv(index=False).encode())
    assert _run("score", "--model-dir", model_dir, "--input", f"s3://{BUCKET}-mixed/mixed/",
                "--output", tmp_path) == 2
    err = capsys.readouterr().err
    assert f"s3://{BUCKET}-mixed/mixed/bad.csv" in err and "V7" in err and "1 of 2 file(s) scored" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.csv", "inference_stats.json"]
    refused = json.loads((tmp_path / "inference_stats.json").read_text())["files"]
    assert [sorted(entry) for entry in refused if "refused" in entry] == [["input", "refused"]]
