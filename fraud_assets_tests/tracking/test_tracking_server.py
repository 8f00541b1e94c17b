"""Against a real ``mlflow server`` as production runs it: PostgreSQL behind, artifacts proxied
into a bucket (the local S3 server) under ``mlflow/``, listening on 127.0.0.1 only."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import httpx
import mlflow
import pytest

from fraud_assets import settings
from fraud_assets.core.model.registry import ModelRegistry
from fraud_assets.core.storage.locations import Location
from fraud_assets_tests.services.s3_server import free_port
from fraud_assets_tests.tracking.conftest import model_copy

pytestmark = pytest.mark.integration
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2"
BUCKET = "card-fraud-test-models"


@pytest.fixture(scope="module")
def tracking_database():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(ADMIN_DSN)
    except psycopg2.OperationalError:
        pytest.skip("no PostgreSQL with trust auth on 127.0.0.1:5432")
    admin.autocommit = True
    name = f"card_fraud_mlflow_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def tracking_server(tracking_database, s3_endpoint, tmp_path_factory):
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=BUCKET)
    port = free_port()
    log_path = tmp_path_factory.mktemp("mlflow") / "server.log"
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--backend-store-uri", tracking_database,
               "--artifacts-destination", f"s3://{BUCKET}/mlflow"]
    with open(log_path, "wb") as log:
        # Its own session: mlflow starts uvicorn as a child, which must stop with it.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # first start migrates the database
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited {process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not up after 120 s: {log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_training_logs_to_the_server_artifacts_land_in_the_bucket_and_aliases_follow(
        tracking_server, s3_endpoint, trained_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUD_TRACKING", "on")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    tracker = settings.tracker()
    assert tracker.uri == tracking_server and tracker.artifact_location is None  # the server's
    registry = ModelRegistry(Location(str(tmp_path / "models")), on_pointer_change=tracker.pointer_follower())
    for version in ("20250101T000000Z-one", "20250102T000000Z-two"):
        model = model_copy(trained_model, version)
        tracker.track_training(model, lambda m=model: registry.save(m))

    client = mlflow.MlflowClient(tracking_server)
    run_ids = {v: registry.manifest(v)["tracking"]["run_id"] for v in registry.version_ids()}
    run = client.get_run(run_ids["20250101T000000Z-one"])
    assert run.data.metrics["test_auprc"] == pytest.approx(trained_model.metrics["test"]["auprc"])
    assert run.data.tags["fraud.data_sha256"] == trained_model.manifest["provenance"]["training_data"]["sha256"]

    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix="mlflow/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    for run_id in run_ids.values():
        assert any(key.endswith(f"{run_id}/artifacts/bundle/model.ubj") for key in keys), keys

    def champion_run():
        return client.get_model_version_by_alias(settings.tracking_model_name(), "champion").run_id

    registry.promote("20250102T000000Z-two", reason="first")
    assert champion_run() == run_ids["20250102T000000Z-two"]
    registry.set_challenger("20250101T000000Z-one", reason="shadow")
    challenger = client.get_model_version_by_alias(settings.tracking_model_name(), "challenger")
    assert challenger.run_id == run_ids["20250101T000000Z-one"]
    registry.promote("20250101T000000Z-one", reason="rollback")
    assert champion_run() == run_ids["20250101T000000Z-one"]
    assert "challenger" not in client.get_registered_model(settings.tracking_model_name()).aliases
