"""The production instance on real parts: PostgreSQL, an S3 server, and the three Dagster
processes the systemd units start, talking to each other over loopback.

A throwaway database on the machine's PostgreSQL holds the instance (deployment/dagster.yaml,
unchanged, in a temporary DAGSTER_HOME); moto's S3 server stands in for S3 (buckets made by
`fraud s3 bootstrap`, compute logs included). The code server, dagster-webserver and
dagster-daemon run as subprocesses with FRAUD_ENV=production, exactly as
deployment/systemd/*.service start them but on free ports. A run of `fraud_pipeline_job` is
launched through the webserver's GraphQL API; the QueuedRunCoordinator leaves it QUEUED
until the daemon dequeues it, so SUCCESS proves all three processes and both stores work.
The asset lineage is then read back through GraphQL, and the run record from PostgreSQL.

Takes two to three minutes on a busy two-core machine, most of it the run itself: the
production executor starts one Python process per step (each imports the code location
again), and the steps form one chain.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from fraud_assets_tests.services.s3_server import free_port

from .conftest import DEPLOYMENT

pytestmark = pytest.mark.integration

DAY = "2025-03-04"
JOB = "fraud_pipeline_job"
LOCATION = "fraud_assets"
REPOSITORY = "__repository__"
RUN_CONFIG = {"ops": {"fraud_model": {"config": {"n_estimators": 60, "early_stopping_rounds": 20}}}}
RUN_TIMEOUT_S = 240
START_TIMEOUT_S = 90
VENV_BIN = Path(sys.executable).parent
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"

SPLITS = ("train_split", "validation_split", "test_split")
EXPECTED_EDGES = {
    ("raw_transactions", "training_dataset"),
    ("transaction_labels", "training_dataset"),
    *(("training_dataset", split) for split in SPLITS),
    ("train_split", "preprocessing_pipeline"),
    ("preprocessing_pipeline", "fraud_model"),
    *((split, "fraud_model") for split in SPLITS),
    ("fraud_model", "production_model"),
    ("fraud_model", "challenger_model"),
    ("production_model", "daily_predictions"),
    ("daily_predictions", "drift_statistics"),
    ("challenger_model", "challenger_predictions"),
    ("daily_predictions", "realized_performance"),
    ("transaction_labels", "realized_performance"),
    ("realized_performance", "challenger_evaluation"),
}
EXPECTED_ASSETS = {asset for edge in EXPECTED_EDGES for asset in edge}
# Labels and what is judged on them run from their own triggers, not the pipeline job.
LATER_OUTCOMES = {"transaction_labels", "realized_performance", "challenger_evaluation"}


# --------------------------------------------------------------------------------------
# PostgreSQL and S3


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(ADMIN_DSN)
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL is unreachable on 127.0.0.1:5432 as postgres (trust): {error}")
    admin.autocommit = True
    name = f"card_fraud_stack_{uuid.uuid4().hex[:10]}"
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _environment(
    endpoint: str, database: str, home: Path, buckets: dict[str, str]
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "FRAUD_", "DAGSTER_"))
    }
    env.update(
        {
            "FRAUD_ENV": "production",
            "FRAUD_S3_ENDPOINT_URL": endpoint,
            # S3ComputeLogManager has no endpoint in dagster.yaml: boto3 reads this one.
            "AWS_ENDPOINT_URL_S3": endpoint,
            "FRAUD_DATA_BUCKET": buckets["data"],
            "FRAUD_MODELS_BUCKET": buckets["models"],
            "FRAUD_PREDICTIONS_BUCKET": buckets["predictions"],
            "FRAUD_BACKUP_BUCKET": buckets["backups"],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": "5432",
            "DAGSTER_PG_USERNAME": "postgres",
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": database,
            "PYTHONUNBUFFERED": "1",
            # The search runs, as deployed, but briefly: the stack is under test here, not the
            # search, and its 60 s default was half of this module's time.
            "FRAUD_SEARCH_BUDGET_SECONDS": "5",
        }
    )
    return env


def _upload(s3, bucket: str, key: str, frame, folder: Path) -> None:
    from fraud_assets.core.data.tables import write_table

    local = folder / Path(key).name
    write_table(frame, str(local))
    s3.upload_file(str(local), bucket, key, ExtraArgs={"ServerSideEncryption": "AES256"})


# --------------------------------------------------------------------------------------
# Processes


@dataclass
class Stack:
    env: dict[str, str]
    folder: Path
    graphql_url: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    # Seconds from the start of the fixture to each milestone, reported by the last test.
    timings: dict[str, float] = field(default_factory=dict)

    def mark(self, milestone: str) -> None:
        self.timings[milestone] = round(time.monotonic() - self.started, 1)

    def start(self, name: str, command: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: run workers and step processes die with their parent.
            start_new_session=True,
        )
        log.close()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}\n{self.tails()}")

    def tails(self, lines: int = 40) -> str:
        out = []
        for name in self.processes:
            text = (self.folder / f"{name}.log").read_text(errors="replace").splitlines()
            out.append(f"----- {name} (last {lines} lines) -----\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(
            self.graphql_url, json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            # The group may outlive its leader (a step process); SIGKILL whatever is left.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)


def _wait(what: str, stack: Stack, probe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            if probe():
                return
        except (requests.RequestException, AssertionError) as error:
            last = error
        time.sleep(0.5)
    pytest.fail(f"{what} not ready after {timeout:.0f} s ({last})\n{stack.tails()}")


LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError {
      __typename ... on RepositoryLocation { name } ... on PythonError { message }
    }
} } } }
"""

INSTIGATORS_QUERY = """
query($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
  __typename
  ... on Repository {
    sensors { name sensorType sensorState { id status } }
    schedules { name scheduleState { id status } }
  }
  ... on PythonError { message }
} }
"""


def _location_loaded(stack: Stack) -> bool:
    entries = stack.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
    (entry,) = [e for e in entries if e["name"] == LOCATION]
    loaded = entry["locationOrLoadError"]
    if loaded and loaded["__typename"] == "PythonError":
        if "DagsterUserCodeUnreachableError" in loaded["message"]:
            return False  # the code server is still importing the definitions
        pytest.fail(f"code location failed to load: {loaded['message']}\n{stack.tails()}")
    return entry["loadStatus"] == "LOADED" and loaded is not None


def _stop_instigators(stack: Stack) -> None:
    """Production turns the incoming-file sensor and the schedules on by default. The
    sensor would start its own scoring run for the batch file this test scores, so every
    sensor and schedule that can request runs is stopped (in the instance's storage) before
    the daemon starts. Run-status sensors (alerts) only react to runs and stay on."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    repo = stack.graphql(INSTIGATORS_QUERY, selector=selector)["repositoryOrError"]
    assert repo["__typename"] == "Repository", repo
    states = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert states.get("incoming_batch_sensor") == "RUNNING", states  # production default
    for sensor in repo["sensors"]:
        if sensor["sensorType"] in ("RUN_STATUS",) or sensor["sensorState"]["status"] != "RUNNING":
            continue
        result = stack.graphql(
            """mutation($id: String) { stopSensor(id: $id) { __typename
                 ... on StopSensorMutationResult { instigationState { status } }
                 ... on PythonError { message } } }""",
            id=sensor["sensorState"]["id"],
        )["stopSensor"]
        assert result.get("instigationState", {}).get("status") == "STOPPED", result
    for schedule in repo["schedules"]:
        assert schedule["scheduleState"]["status"] == "RUNNING", "production default"
        result = stack.graphql(
            """mutation($id: String) { stopRunningSchedule(id: $id) { __typename
                 ... on ScheduleStateResult { scheduleState { status } }
                 ... on PythonError { message } } }""",
            id=schedule["scheduleState"]["id"],
        )["stopRunningSchedule"]
        assert result.get("scheduleState", {}).get("status") == "STOPPED", result


@pytest.fixture(scope="module")
def stack(database: str, s3_endpoint: str, tmp_path_factory) -> Iterator[Stack]:
    import boto3

    from fraud_assets.synthetic.generate import generate_transactions

    folder = tmp_path_factory.mktemp("production-stack")
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOYMENT / "dagster.yaml", home / "dagster.yaml")

    suffix = uuid.uuid4().hex[:8]
    buckets = {
        role: f"stack-{role}-{suffix}" for role in ("data", "models", "predictions", "backups")
    }
    env = _environment(s3_endpoint, database, home, buckets)
    stack = Stack(env=env, folder=folder)

    # Buckets as the operator makes them (versioning, encryption, lifecycle).
    bootstrap = subprocess.run(
        [str(VENV_BIN / "fraud"), "s3", "bootstrap"],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bootstrap.returncode == 0, bootstrap.stdout + bootstrap.stderr
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    assert set(buckets.values()) <= {b["Name"] for b in s3.list_buckets()["Buckets"]}

    raw = generate_transactions(40_000, seed=3, n_days=2, fraud_rate=0.01)
    _upload(s3, buckets["data"], "raw/creditcard.csv", raw, folder)
    batch = generate_transactions(3_000, seed=1, start_day=3, n_days=1, labels=False)
    _upload(s3, buckets["data"], f"incoming/{DAY}_x.csv", batch, folder)
    stack.mark("buckets and data")

    # The deployed workspace file, pointed at this test's code-server port.
    grpc_port, web_port = free_port(), free_port()
    workspace = yaml.safe_load((DEPLOYMENT / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"]["location_name"] == LOCATION
    entry["grpc_server"].update(host="127.0.0.1", port=grpc_port)
    workspace_file = folder / "workspace.yaml"
    workspace_file.write_text(yaml.safe_dump(workspace))

    stack.graphql_url = f"http://127.0.0.1:{web_port}/graphql"
    try:
        stack.start(
            "code-server",
            [str(VENV_BIN / "dagster"), "code-server", "start",
             "-h", "127.0.0.1", "-p", str(grpc_port), "-m", "fraud_assets.definitions"],
        )  # fmt: skip
        # Started together, as systemd starts the units: the webserver keeps retrying a code
        # server that is still loading.
        stack.start(
            "webserver",
            [str(VENV_BIN / "dagster-webserver"),
             "-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace_file)],
        )  # fmt: skip
        _wait(
            "dagster-webserver",
            stack,
            lambda: requests.get(f"http://127.0.0.1:{web_port}/server_info", timeout=5).ok,
            START_TIMEOUT_S,
        )
        stack.mark("webserver up")
        _wait("code location", stack, lambda: _location_loaded(stack), START_TIMEOUT_S)
        stack.mark("code location loaded")
        _stop_instigators(stack)
        stack.start(
            "daemon",
            [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(workspace_file)],
        )
        yield stack
    finally:
        stack.stop()


# --------------------------------------------------------------------------------------
# The run

LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId status } }
  ... on PythonError { message stack }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on InvalidSubsetError { message }
  ... on PipelineNotFoundError { message }
  ... on UnauthorizedError { message }
} }
"""

RUN_STATUS = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""

RUN_EVENTS = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run {
  status
  tags { key value }
  assetMaterializations { assetKey { path } partition }
  eventConnection(limit: 5000) { events {
    __typename
    ... on MessageEvent { message level stepKey }
    ... on ErrorEvent { error { message stack } }
  } }
} } }
"""

LINEAGE = """
{ assetNodes { assetKey { path } dependencyKeys { path } dependedByKeys { path } } }
"""

DAEMONS = """
{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""


def _failure_report(stack: Stack, run_id: str) -> str:
    run = stack.graphql(RUN_EVENTS, runId=run_id)["runOrError"]
    lines = [f"run {run_id}: {run.get('status')}"]
    for event in run.get("eventConnection", {}).get("events", []):
        if event.get("level") in ("ERROR", "CRITICAL") or event.get("error"):
            lines.append(f"[{event.get('stepKey')}] {event['__typename']}: {event.get('message')}")
            if event.get("error"):
                lines.append(event["error"]["message"] + (event["error"].get("stack") or [""])[-1])
    return "\n".join(lines) + "\n" + stack.tails()


@dataclass
class FinishedRun:
    run_id: str
    launch_status: str
    seconds: float


@pytest.fixture(scope="module")
def finished_run(stack: Stack) -> FinishedRun:
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": JOB,
        },
        "runConfigData": RUN_CONFIG,
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
    }
    started = time.monotonic()
    result = stack.graphql(LAUNCH, params=params)["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id = result["run"]["runId"]
    launch_status = result["run"]["status"]

    deadline = started + RUN_TIMEOUT_S
    status = launch_status
    while time.monotonic() < deadline:
        stack.check_alive()
        status = stack.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
        if status != "QUEUED" and "run dequeued" not in stack.timings:
            stack.mark("run dequeued")
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    if status != "SUCCESS":
        pytest.fail(
            f"run ended {status} (timeout {RUN_TIMEOUT_S} s)\n{_failure_report(stack, run_id)}"
        )
    stack.mark("run succeeded")
    return FinishedRun(run_id, launch_status, time.monotonic() - started)


def test_daemon_dequeues_and_the_run_succeeds(stack: Stack, finished_run: FinishedRun) -> None:
    # The webserver only enqueued it: QUEUED until dagster-daemon picked it up.
    assert finished_run.launch_status == "QUEUED"
    run = stack.graphql(RUN_EVENTS, runId=finished_run.run_id)["runOrError"]
    assert run["status"] == "SUCCESS"
    # Dagster 1.13 records the enqueue, then the launch by the daemon (RunStartingEvent);
    # it writes no separate dequeue event.
    kinds = [e["__typename"] for e in run["eventConnection"]["events"]]
    order = ["RunEnqueuedEvent", "RunStartingEvent", "RunStartEvent", "RunSuccessEvent"]
    assert set(order) <= set(kinds), sorted(set(kinds))
    assert [kinds.index(kind) for kind in order] == sorted(kinds.index(kind) for kind in order)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/partition"] == DAY
    assert tags["fraud/job"] == "pipeline"

    daemons = stack.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    healthy = {d["daemonType"]: d["healthy"] for d in daemons if d["required"]}
    assert healthy.get("QUEUED_RUN_COORDINATOR") is True, healthy


def key(asset_key: dict) -> str:
    return "/".join(asset_key["path"])


def test_every_asset_is_materialized_with_its_lineage(
    stack: Stack, finished_run: FinishedRun
) -> None:
    nodes = stack.graphql(LINEAGE)["assetNodes"]
    upstream = {key(n["assetKey"]): {key(d) for d in n["dependencyKeys"]} for n in nodes}
    downstream = {key(n["assetKey"]): {key(d) for d in n["dependedByKeys"]} for n in nodes}
    assert EXPECTED_ASSETS <= set(upstream), sorted(upstream)
    for parent, child in sorted(EXPECTED_EDGES):
        assert parent in upstream[child], (parent, child, upstream[child])
        assert child in downstream[parent], (parent, child, downstream[parent])
    # The two views of the graph agree with each other.
    for child, parents in upstream.items():
        for parent in parents:
            assert child in downstream[parent], (parent, child)

    run = stack.graphql(RUN_EVENTS, runId=finished_run.run_id)["runOrError"]
    materialized = {key(m["assetKey"]) for m in run["assetMaterializations"]}
    assert set(upstream) - LATER_OUTCOMES <= materialized, sorted(set(upstream) - LATER_OUTCOMES - materialized)
    partitions = {
        key(m["assetKey"]): m["partition"]
        for m in run["assetMaterializations"]
        if key(m["assetKey"]) in ("daily_predictions", "drift_statistics")
    }
    assert partitions == {"daily_predictions": DAY, "drift_statistics": DAY}


def test_run_record_is_in_postgres_and_logs_in_s3(
    stack: Stack, finished_run: FinishedRun, database: str, s3_endpoint: str
) -> None:
    import boto3
    import psycopg2

    connection = psycopg2.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname=database, connect_timeout=3
    )
    try:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pipeline_name, status, run_body FROM runs WHERE run_id = %s",
                (finished_run.run_id,),
            )
            (job, status, body) = cur.fetchone()
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                (finished_run.run_id, "ASSET_MATERIALIZATION"),
            )
            (materializations,) = cur.fetchone()
    finally:
        connection.close()
    assert (job, status) == (JOB, "SUCCESS")
    assert json.loads(body)["tags"]["dagster/partition"] == DAY
    # Every asset of the pipeline run: all but the labels and what is judged on them.
    assert materializations >= len(EXPECTED_ASSETS - LATER_OUTCOMES)

    # Step stdout/stderr went to the data bucket through the S3 compute-log manager.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    data = stack.env["FRAUD_DATA_BUCKET"]
    logs = s3.list_objects_v2(Bucket=data, Prefix="dagster/compute-logs/").get("KeyCount", 0)
    assert logs > 0, "no compute logs in S3"
    # The batch file was scored and moved out of incoming/.
    assert s3.list_objects_v2(Bucket=data, Prefix="incoming/").get("KeyCount", 0) == 0
    print(f"production stack milestones (s): {stack.timings}")  # shown with -rP
