"""docker-compose.yml up for real: the seed guide's phase 3 (build, start) and phase 6 checks.

Images are built locally (docker_engine.py). The compose file and deployment/ are copied
unchanged into a temporary project folder beside a filled-in compose.env and secret files,
and Debian's docker-compose (1.29) starts the stack under a project name of its own, with
free host ports (still on 127.0.0.1). moto's S3 server stands in for S3 on the host's
address on Docker's bridge, which the containers reach and nothing outside the machine
does. Training and scoring are launched through the webserver's GraphQL API and must
succeed with the instance in the PostgreSQL container; then the scoring service, which
picks up the promoted model, answers /predict and counts it in /metrics.

Takes about five minutes on two cores the first time a base image is made, three to four
after: health checks (30 s and 60 s intervals), then the two runs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from fraud_assets_tests.services.s3_server import free_port

from .conftest import DEPLOYMENT, REPO
from .docker_engine import Images, bridge_gateway, build_images, compose_binary, docker
from .test_production_stack import (
    LAUNCH,
    LOCATION,
    REPOSITORY,
    RUN_EVENTS,
    RUN_STATUS,
    _upload,
)

pytestmark = [pytest.mark.docker, pytest.mark.integration]

DAY = "2025-03-04"
TRAINING_CONFIG = {"ops": {"fraud_model": {"config": {"n_estimators": 60, "early_stopping_rounds": 20}}}}
HEALTH_TIMEOUT_S = 300
RUN_TIMEOUT_S = 420
DAGSTER_SERVICES = ("code-server", "webserver", "daemon")
SERVICES = ("postgres", *DAGSTER_SERVICES, "fraud-inference", "mlflow")
UID = "10001"


@dataclass
class ComposeStack:
    folder: Path
    project: str
    env: dict[str, str]
    web_port: int
    inference_port: int
    mlflow_port: int
    s3_endpoint_host: str
    buckets: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)

    def mark(self, milestone: str) -> None:
        self.timings[milestone] = round(time.monotonic() - self.started, 1)

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [compose_binary(), "-p", self.project, "-f", str(self.folder / "docker-compose.yml"), *args],
            cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service).stdout.split()
        assert len(ids) == 1, (service, ids)
        return ids[0]

    def inspect(self, service: str) -> dict:
        return json.loads(docker("inspect", self.container(service)).stdout)[0]

    def logs(self, tail: int = 60) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}", check=False).stdout

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(
            f"http://127.0.0.1:{self.web_port}/graphql",
            json={"query": query, "variables": variables}, timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


def _health(stack: ComposeStack, service: str) -> str:
    state = stack.inspect(service)["State"]
    return state.get("Health", {}).get("Status", state["Status"])


def _wait_healthy(stack: ComposeStack, services: tuple[str, ...], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status: dict[str, str] = {}
    while time.monotonic() < deadline:
        status = {service: _health(stack, service) for service in services}
        if all(value == "healthy" for value in status.values()):
            return
        # A container that exited for good (not restarting) will not become healthy.
        time.sleep(3)
    pytest.fail(f"not healthy after {timeout:.0f} s: {status}\n{stack.logs()}")


def _write_project(folder: Path, *, endpoint: str, buckets: dict[str, str]) -> None:
    shutil.copy(REPO / "docker-compose.yml", folder / "docker-compose.yml")
    shutil.copytree(DEPLOYMENT, folder / "deployment", ignore=shutil.ignore_patterns("compose.env", "secrets"))
    settings = {
        "FRAUD_ENV": "production",
        "FRAUD_DATA_BUCKET": buckets["data"],
        "FRAUD_MODELS_BUCKET": buckets["models"],
        "FRAUD_PREDICTIONS_BUCKET": buckets["predictions"],
        "FRAUD_BACKUP_BUCKET": buckets["backups"],
        "FRAUD_S3_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # No instance metadata service here: boto3 must not wait for one.
        "AWS_EC2_METADATA_DISABLED": "true",
        # A short search: the test is about the stack, not the configuration it finds.
        "FRAUD_SEARCH_BUDGET_SECONDS": "5",
    }
    (folder / "deployment" / "compose.env").write_text(
        "".join(f"{key}={value}\n" for key, value in settings.items())
    )
    secrets_dir = folder / "deployment" / "secrets"
    secrets_dir.mkdir()
    # As docs/deployment.md makes them: root-owned, readable by the image's group only.
    for name, value in (("postgres_password", secrets.token_hex(16)), ("slack_webhook_url", "")):
        path = secrets_dir / name
        path.write_text(value + "\n" if value else "")
        os.chown(path, 0, int(UID))
        path.chmod(0o440)


@pytest.fixture(scope="module")
def images() -> Images:
    if os.geteuid() != 0:
        pytest.skip("the compose stack test runs as root (it starts dockerd and owns secrets as root)")
    compose_binary()
    return build_images()


@pytest.fixture(scope="module")
def stack(images: Images, tmp_path_factory) -> Iterator[ComposeStack]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from fraud_assets.synthetic.generate import generate_transactions

    # One log line per S3 request drowns the report.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    folder = tmp_path_factory.mktemp("compose-stack")
    gateway = bridge_gateway()
    s3_port = free_port()
    # On the bridge's gateway address: the containers reach it, other machines do not.
    server = ThreadedMotoServer(ip_address=gateway, port=s3_port, verbose=False)
    server.start()
    endpoint = f"http://{gateway}:{s3_port}"
    suffix = uuid.uuid4().hex[:8]
    buckets = {role: f"compose-{role}-{suffix}" for role in ("data", "models", "predictions", "backups")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FRAUD_", "DAGSTER_"))},
        "CARD_FRAUD_IMAGE": images.app,
        "POSTGRES_IMAGE": images.postgres,
        "CARD_FRAUD_WEBSERVER_PORT": str(free_port()),
        "CARD_FRAUD_INFERENCE_PORT": str(free_port()),
        "CARD_FRAUD_MLFLOW_PORT": str(free_port()),
        "CARD_FRAUD_DASK_DASHBOARD_PORT": str(free_port()),
        "CARD_FRAUD_DASK_WORKER_MEMORY": "1GiB",
    }
    stack = ComposeStack(
        folder=folder, project=f"cardfraudtest{suffix}", env=env,
        web_port=int(env["CARD_FRAUD_WEBSERVER_PORT"]),
        inference_port=int(env["CARD_FRAUD_INFERENCE_PORT"]),
        mlflow_port=int(env["CARD_FRAUD_MLFLOW_PORT"]),
        s3_endpoint_host=endpoint, buckets=buckets,
    )
    host_env = {
        **env, "FRAUD_ENV": "production", "FRAUD_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        **{f"FRAUD_{role.upper()}_BUCKET": name for role, name in buckets.items()},
        "FRAUD_BACKUP_BUCKET": buckets["backups"],
    }
    try:
        made = subprocess.run(
            [str(Path(sys.executable).parent / "fraud"), "s3", "bootstrap"],
            env=host_env, capture_output=True, text=True, timeout=120, check=False, cwd=folder,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        raw = generate_transactions(40_000, seed=3, n_days=2, fraud_rate=0.01)
        _upload(s3, buckets["data"], "raw/creditcard.csv", raw, folder)
        _write_project(folder, endpoint=endpoint, buckets=buckets)

        stack.started = time.monotonic()
        stack.compose("up", "-d", "--no-build")
        stack.mark("compose up returned")
        yield stack
    finally:
        if os.environ.get("CARD_FRAUD_KEEP_STACK") != "1":
            stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)
        server.stop()


def _stop_instigators(stack: ComposeStack) -> None:
    """Production starts the incoming-file sensor; the batch this test scores is launched by
    hand, so every run-requesting sensor and schedule is stopped before the file lands."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    repo = stack.graphql(
        """query($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
             ... on Repository { sensors { sensorType sensorState { id status } }
                                 schedules { scheduleState { id status } } } } }""",
        selector=selector,
    )["repositoryOrError"]
    for sensor in repo["sensors"]:
        if sensor["sensorType"] != "RUN_STATUS" and sensor["sensorState"]["status"] == "RUNNING":
            stack.graphql("mutation($id: String) { stopSensor(id: $id) { __typename } }",
                          id=sensor["sensorState"]["id"])
    for schedule in repo["schedules"]:
        if schedule["scheduleState"]["status"] == "RUNNING":
            stack.graphql("mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }",
                          id=schedule["scheduleState"]["id"])


def _run(stack: ComposeStack, job: str, config: dict, tags: dict[str, str]) -> str:
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
        "runConfigData": config,
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    result = stack.graphql(LAUNCH, params=params)["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id = result["run"]["runId"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = result["run"]["status"]
    while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(3)
        status = stack.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
    if status != "SUCCESS":
        run = stack.graphql(RUN_EVENTS, runId=run_id)["runOrError"]
        errors = [e for e in run["eventConnection"]["events"] if e.get("level") == "ERROR" or e.get("error")]
        pytest.fail(f"{job} ended {status}: {json.dumps(errors)[-4000:]}\n{stack.logs()}")
    return run_id


@dataclass
class Runs:
    training: str
    scoring: str


@pytest.fixture(scope="module")
def runs(stack: ComposeStack) -> Runs:
    import boto3

    from fraud_assets.synthetic.generate import generate_transactions

    _wait_healthy(stack, ("postgres", *DAGSTER_SERVICES), HEALTH_TIMEOUT_S)
    stack.mark("postgres and dagster services healthy")
    _stop_instigators(stack)
    training = _run(stack, "training_job", TRAINING_CONFIG, {})
    stack.mark("training run succeeded")
    s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint_host, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    batch = generate_transactions(3_000, seed=1, start_day=3, n_days=1, labels=False)
    _upload(s3, stack.buckets["data"], f"incoming/{DAY}_x.csv", batch, stack.folder)
    scoring = _run(stack, "scoring_job", {}, {"dagster/partition": DAY})
    stack.mark("scoring run succeeded")
    return Runs(training, scoring)


def test_containers_run_read_only_as_the_image_user(stack: ComposeStack) -> None:
    for service in (*DAGSTER_SERVICES, "fraud-inference", "mlflow"):
        info = stack.inspect(service)
        assert info["HostConfig"]["ReadonlyRootfs"] is True, service
        assert info["Config"]["User"] == f"{UID}:{UID}", service
        assert info["HostConfig"]["CapDrop"] == ["ALL"], service
        # Writable places are exactly what the compose file declares: a tmpfs at /tmp.
        assert set(info["HostConfig"].get("Tmpfs") or {}) == {"/tmp"}, service
        writable = [m["Destination"] for m in info["Mounts"] if m.get("RW")]
        assert writable == [], (service, writable)


def test_training_and_scoring_run_through_graphql(stack: ComposeStack, runs: Runs) -> None:
    for run_id, job in ((runs.training, "training_job"), (runs.scoring, "scoring_job")):
        run = stack.graphql(RUN_EVENTS, runId=run_id)["runOrError"]
        assert run["status"] == "SUCCESS"
        kinds = {e["__typename"] for e in run["eventConnection"]["events"]}
        # Queued by the webserver, started by the daemon in its container.
        assert {"RunEnqueuedEvent", "RunStartingEvent", "RunSuccessEvent"} <= kinds, (job, kinds)
    # The run records are in the PostgreSQL container, not in a file of the image.
    query = f"SELECT pipeline_name, status FROM runs WHERE run_id IN ('{runs.training}', '{runs.scoring}') ORDER BY pipeline_name"
    out = docker("exec", stack.container("postgres"), "psql", "-U", "dagster", "-d", "dagster",
                 "-At", "-F", ",", "-c", query).stdout.split()
    assert out == ["scoring_job,SUCCESS", "training_job,SUCCESS"], out
    print(f"compose stack milestones (s from compose up): {stack.timings}")


def test_scoring_service_serves_the_promoted_model_and_counts_it(stack: ComposeStack, runs: Runs) -> None:
    from fraud_assets.synthetic.generate import generate_transactions

    base = f"http://127.0.0.1:{stack.inference_port}"
    # It exits until a model is promoted; Docker restarts it with back-off (up to a minute).
    _wait_healthy(stack, ("fraud-inference",), HEALTH_TIMEOUT_S)
    stack.mark("scoring service healthy")
    row = generate_transactions(1, seed=9, labels=False).iloc[0]
    payload = {"transaction_id": "t1", **{k: float(v) for k, v in row.items() if k == "Time" or k == "Amount" or re.fullmatch(r"V\d+", k)}}
    answer = requests.post(f"{base}/predict", json=payload, timeout=30)
    assert answer.status_code == 200, answer.text
    # The guide's phase 6 check: curl localhost:8000/metrics | grep fraud_predictions_total
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    (value,) = re.findall(r"^fraud_predictions_total(?:\{[^}]*\})? (\S+)$", metrics, flags=re.MULTILINE)
    assert float(value) >= 1


def finished_training_runs(stack: ComposeStack) -> list[dict]:
    """The MLflow server's finished runs that logged a trained model's test metrics."""
    api = f"http://127.0.0.1:{stack.mlflow_port}/api/2.0/mlflow"
    _wait_healthy(stack, ("mlflow",), HEALTH_TIMEOUT_S)
    experiment = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": "card-fraud"},
                              timeout=30)
    assert experiment.status_code == 200, experiment.text
    found = requests.post(f"{api}/runs/search", timeout=30, json={
        "experiment_ids": [experiment.json()["experiment"]["experiment_id"]],
        "filter": "attributes.status = 'FINISHED'",
    })
    assert found.status_code == 200, found.text
    return [r for r in found.json().get("runs", []) if "test_auprc" in {m["key"] for m in r["data"].get("metrics", [])}]


def test_training_is_tracked_on_the_stacks_mlflow_server(stack: ComposeStack, runs: Runs) -> None:
    import boto3

    api = f"http://127.0.0.1:{stack.mlflow_port}/api/2.0/mlflow"
    assert finished_training_runs(stack)
    # The promoted model is MLflow's champion, and the run's artifacts went through the server
    # to the models bucket.
    champion = requests.get(f"{api}/registered-models/alias", params={"name": "card-fraud", "alias": "champion"},
                            timeout=30)
    assert champion.status_code == 200, champion.text
    s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint_host, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = s3.list_objects_v2(Bucket=stack.buckets["models"], Prefix="mlflow/").get("KeyCount", 0)
    assert stored > 0


def test_the_dask_profile_trains_on_its_workers(stack: ComposeStack, runs: Runs) -> None:
    # After the runs: the cluster is an addition to the stack, not a condition of it.
    stack.compose("--profile", "dask", "up", "-d", "--no-build", "--scale", "dask-worker=2",
                  "dask-scheduler", "dask-worker", timeout=300)
    _wait_healthy(stack, ("dask-scheduler",), HEALTH_TIMEOUT_S)
    for worker in stack.compose("ps", "-q", "dask-worker").stdout.split():
        info = json.loads(docker("inspect", worker).stdout)[0]
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        # Training spills to a volume on disk, not to the tmpfs, whose pages are memory.
        writable = [m["Destination"] for m in info["Mounts"] if m.get("RW")]
        assert writable == ["/var/lib/card-fraud/dask-worker"], writable
    dashboard = int(stack.env["CARD_FRAUD_DASK_DASHBOARD_PORT"])
    assert requests.get(f"http://127.0.0.1:{dashboard}/health", timeout=10).text == "ok"
    stack.mark("dask cluster up")
    import boto3

    from fraud_assets.synthetic.generate import generate_transactions

    # Two files, so both workers get a partition to train on (one small file is one
    # partition, which one worker trains).
    s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint_host, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for day in (0, 1):
        _upload(s3, stack.buckets["data"], f"cluster-training/day-{day}.csv",
                generate_transactions(20_000, seed=40 + day, start_day=day, n_days=1, fraud_rate=0.02),
                stack.folder)
    show_training = "import json; print(json.dumps(json.load(open('/tmp/model/manifest.json'))['training']))"
    trained = stack.compose(
        "--profile", "dask", "run", "--rm", "--no-deps",
        "-e", "FRAUD_DASK_SCHEDULER=tcp://dask-scheduler:8786", "-e", "FRAUD_TRACKING=off",
        "code-server", "sh", "-c",
        f"fraud train --data s3://{stack.buckets['data']}/cluster-training/ --output-dir /tmp/model "
        f"--search-budget 0 && python -c \"{show_training}\"",
        timeout=600, check=False,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr + stack.logs()
    stack.mark("trained on the dask workers")
    training = json.loads(trained.stdout.strip().splitlines()[-1])
    assert training["engine"] == "xgboost-external-memory-on-dask" and training["workers"] == 2, training


def test_only_the_declared_ports_listen_and_only_on_loopback(stack: ComposeStack) -> None:
    published = {}
    for service in SERVICES:
        ports = stack.inspect(service)["NetworkSettings"]["Ports"] or {}
        published[service] = {
            container: [(b["HostIp"], b["HostPort"]) for b in bindings]
            for container, bindings in ports.items() if bindings
        }
    assert published == {
        "postgres": {},
        "code-server": {},
        "webserver": {"3100/tcp": [("127.0.0.1", str(stack.web_port))]},
        "daemon": {},
        "fraud-inference": {"8000/tcp": [("127.0.0.1", str(stack.inference_port))]},
        "mlflow": {"5000/tcp": [("127.0.0.1", str(stack.mlflow_port))]},
    }
    # And on the host, the proxies Docker starts for them listen on loopback only.
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    for port in (stack.web_port, stack.inference_port, stack.mlflow_port):
        addresses = re.findall(rf"^\S+\s+\d+\s+\d+\s+(\S+):{port}\s", listening, flags=re.MULTILINE)
        assert addresses and set(addresses) == {"127.0.0.1"}, (port, addresses)


def test_runtime_image_holds_no_build_or_test_tools(images: Images) -> None:
    probe = (
        "id -u; for tool in uv pip pip3 gcc cc make pytest ruff; do command -v $tool; done; "
        "python3 -m pip --version 2>/dev/null; "
        "ls /opt/card-fraud/.venv/lib/python3.11/site-packages | grep -iE '^(pytest|moto|ruff|hadolint|uv)[-_.]'; "
        "ls -A /opt/card-fraud; true"
    )
    out = docker("run", "--rm", "--read-only", "--network", "none", "--entrypoint", "sh",
                 images.app, "-c", probe).stdout.split()
    # Only the user id and the one deployment folder: no installer, compiler, test
    # dependency or source tree.
    assert out == [UID, ".venv", "deployment"], out
    size = int(docker("image", "inspect", images.app, "--format", "{{.Size}}").stdout)
    print(f"image {images.app}: {size / 1e9:.2f} GB")
