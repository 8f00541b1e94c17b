"""docker-compose.yml with deployment/compose.docker-launcher.yml, up for real: a training run
launched through the webserver starts in a fresh container of its own, hardened, on the
project network, and is removed when it ends; its events are in the instance.

Built on test_compose_stack.py's project layout and helpers. The images get tags of their
own, so a stack of another test on the same engine keeps its images. As docs/deployment.md
tells an operator to, the S3 endpoint and the test's credentials (optional settings) are
added to the launcher's env_vars: here by mounting the edited instance file over the baked
one, through a third compose file.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import DEPLOYMENT
from .docker_engine import DEBIAN_CLIENT, compose_binary, docker, ensure_engine
from .test_compose_stack import (
    DAGSTER_SERVICES,
    HEALTH_TIMEOUT_S,
    RUN_EVENTS,
    RUN_STATUS,
    TRAINING_CONFIG,
    UID,
    ComposeStack,
    _stop_instigators,
    _wait_healthy,
    _write_project,
    finished_training_runs,
)
from .test_production_stack import LAUNCH, LOCATION, REPOSITORY

pytestmark = [pytest.mark.docker, pytest.mark.integration]

APP_IMAGE = "card-fraud:docker-launcher-test"
POSTGRES_IMAGE = "card-fraud-postgres:docker-launcher-test"
HOME = "/var/lib/card-fraud/docker"
OPTIONAL_FOR_THE_TEST = ["FRAUD_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                         "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"]


class LauncherStack(ComposeStack):
    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        files = ["docker-compose.yml", "deployment/compose.docker-launcher.yml", "test-instance.yml"]
        command = [compose_binary(), "-p", self.project]
        for name in files:
            command += ["-f", str(self.folder / name)]
        result = subprocess.run([*command, *args], cwd=self.folder, env=self.env, capture_output=True,
                                text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result


def _build_images() -> None:
    ensure_engine()
    env = {**os.environ, "PATH": f"{DEBIAN_CLIENT.parent}:{os.environ.get('PATH', '')}"}
    made = subprocess.run(["sh", str(DEPLOYMENT / "docker" / "build-base-image.sh")], capture_output=True,
                          text=True, timeout=900, env=env, check=False)
    assert made.returncode == 0, made.stdout + made.stderr[-4000:]
    base = made.stdout.strip().splitlines()[-1]
    docker("build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}", "-t", APP_IMAGE,
           str(DEPLOYMENT.parent), timeout=900)
    docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", POSTGRES_IMAGE,
           str(DEPLOYMENT / "docker" / "postgres"), timeout=900)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LauncherStack]:
    if os.geteuid() != 0:
        pytest.skip("the compose stack test runs as root (it starts dockerd and owns secrets as root)")
    compose_binary()
    _build_images()
    import logging
    import uuid

    import boto3
    from moto.server import ThreadedMotoServer

    from fraud_assets.synthetic.generate import generate_transactions
    from fraud_assets_tests.services.s3_server import free_port

    from .docker_engine import bridge_gateway
    from .test_production_stack import _upload

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    folder = tmp_path_factory.mktemp("docker-launcher-stack")
    gateway, s3_port = bridge_gateway(), free_port()
    server = ThreadedMotoServer(ip_address=gateway, port=s3_port, verbose=False)
    server.start()
    endpoint = f"http://{gateway}:{s3_port}"
    suffix = uuid.uuid4().hex[:8]
    buckets = {role: f"launcher-{role}-{suffix}" for role in ("data", "models", "predictions", "backups")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FRAUD_", "DAGSTER_"))},
        "CARD_FRAUD_IMAGE": APP_IMAGE, "POSTGRES_IMAGE": POSTGRES_IMAGE,
        "CARD_FRAUD_WEBSERVER_PORT": str(free_port()), "CARD_FRAUD_INFERENCE_PORT": str(free_port()),
        "CARD_FRAUD_MLFLOW_PORT": str(free_port()), "CARD_FRAUD_DASK_DASHBOARD_PORT": str(free_port()),
        "CARD_FRAUD_DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
    }
    stack = LauncherStack(folder=folder, project=f"cardfraudlauncher{suffix}", env=env,
                          web_port=int(env["CARD_FRAUD_WEBSERVER_PORT"]),
                          inference_port=int(env["CARD_FRAUD_INFERENCE_PORT"]),
                          mlflow_port=int(env["CARD_FRAUD_MLFLOW_PORT"]),
                          s3_endpoint_host=endpoint, buckets=buckets)
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for name in buckets.values():
            s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=buckets["models"], VersioningConfiguration={"Status": "Enabled"})
        _upload(s3, buckets["data"], "raw/creditcard.csv",
                generate_transactions(40_000, seed=3, n_days=2, fraud_rate=0.01), folder)
        _write_project(folder, endpoint=endpoint, buckets=buckets)
        # compose.env.example sets it (the launcher forwards it); empty: no Pushgateway here.
        with open(folder / "deployment" / "compose.env", "a") as env_file:
            env_file.write("FRAUD_PUSHGATEWAY_URL=\n")
        instance = yaml.safe_load((DEPLOYMENT / "docker" / "dagster.yaml").read_text())
        instance["run_launcher"]["config"]["env_vars"] += OPTIONAL_FOR_THE_TEST
        (folder / "test-dagster.yaml").write_text(yaml.safe_dump(instance))
        mount = {"volumes": [f"{folder / 'test-dagster.yaml'}:{HOME}/dagster.yaml:ro"]}
        (folder / "test-instance.yml").write_text(yaml.safe_dump(
            {"services": {name: mount for name in DAGSTER_SERVICES}}))
        stack.started = time.monotonic()
        stack.compose("up", "-d", "--no-build", "postgres", "mlflow", *DAGSTER_SERVICES)
        yield stack
    finally:
        if os.environ.get("CARD_FRAUD_KEEP_STACK") != "1":
            stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)
        server.stop()


def _tags(stack: LauncherStack, run_id: str) -> dict[str, str]:
    run = stack.graphql(RUN_EVENTS, runId=run_id)["runOrError"]
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def test_a_run_starts_in_a_hardened_container_of_its_own_and_leaves_none(stack: LauncherStack) -> None:
    _wait_healthy(stack, ("postgres", *DAGSTER_SERVICES), HEALTH_TIMEOUT_S)
    stack.mark("healthy")
    _stop_instigators(stack)
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": "training_job"},
        "runConfigData": TRAINING_CONFIG,
    }
    launched = stack.graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    # While it runs: its own container, from the image, hardened, on the project network.
    deadline, container, seen = time.monotonic() + 300, None, None
    while time.monotonic() < deadline and seen is None:
        container = _tags(stack, run_id).get("docker/container_id")
        if container:
            found = docker("inspect", container, check=False)
            if found.returncode == 0:
                seen = json.loads(found.stdout)[0]
                break
        status = stack.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
        assert status not in ("FAILURE", "CANCELED"), (status, stack.logs())
        time.sleep(1)
    assert seen is not None, f"no run container seen\n{stack.logs()}"
    assert seen["Config"]["Image"] == APP_IMAGE
    assert seen["Config"]["User"] == f"{UID}:{UID}"
    assert seen["Config"]["Cmd"][:3] == ["dagster", "api", "execute_run"]
    assert seen["Config"]["Labels"]["dagster/run_id"] == run_id
    host = seen["HostConfig"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"] and host["AutoRemove"] is True
    assert host["NetworkMode"] == "card-fraud-runs" and host["Memory"] == 8 * 2**30
    assert container not in {stack.container(name) for name in DAGSTER_SERVICES}

    deadline, status = time.monotonic() + 420, "STARTED"
    while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(3)
        status = stack.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
    run = stack.graphql(RUN_EVENTS, runId=run_id)["runOrError"]
    assert status == "SUCCESS", json.dumps(run["eventConnection"]["events"][-20:])[-4000:]
    stack.mark("training run succeeded")
    messages = [e.get("message") or "" for e in run["eventConnection"]["events"]]
    about_containers = [m for m in messages if "container" in m.lower()]
    assert any(container in m for m in about_containers), about_containers
    assert {"fraud_model"} <= {"/".join(m["assetKey"]["path"]) for m in run["assetMaterializations"]}
    # The container is gone, its training is not: it was logged to the stack's MLflow server.
    assert finished_training_runs(stack), stack.logs()
    # Removed when it exited: its record lives in the instance, not in a stopped container.
    deadline = time.monotonic() + 60
    while docker("inspect", container, check=False).returncode == 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert docker("inspect", container, check=False).returncode != 0
    print(f"docker launcher stack milestones (s from compose up): {stack.timings}")


def test_the_stack_uses_the_instance_with_the_docker_launcher(stack: LauncherStack) -> None:
    config = docker("exec", stack.container("daemon"), "cat", f"{HOME}/dagster.yaml").stdout
    assert yaml.safe_load(config)["run_launcher"]["class"] == "DockerRunLauncher"
    env = docker("inspect", stack.container("daemon"), "--format", "{{json .Config.Env}}").stdout
    assert f"DAGSTER_HOME={HOME}" in json.loads(env)
    assert Path("/var/run/docker.sock").is_socket()
