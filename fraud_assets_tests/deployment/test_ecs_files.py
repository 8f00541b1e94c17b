"""deployment/ecs/: runs in their own ECS tasks, checked offline.

- The instance file against Dagster's own schema (`dagster_instance_config`), then the
  `EcsRunLauncher` built from it by Dagster itself, against moto's ECS with the run task
  definition of this folder registered: building the launcher looks the definition up and
  checks that it has the container the launcher overrides.
- The task definitions against botocore's RegisterTaskDefinition request model, and their
  security properties.
- The IAM documents with parliament, by their grants, and against the ECS calls that the
  installed dagster-aws makes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import DEPLOYMENT, REPO, run, validated_instance

ECS = DEPLOYMENT / "ecs"
PARLIAMENT = Path(__file__).with_name("_parliament_cli.py")
REGION = "us-east-1"
HOME = "/var/lib/card-fraud/ecs"


def _json(name: str) -> dict:
    return json.loads((ECS / name).read_text())


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _containers(task_definition: str) -> dict[str, dict]:
    return {c["name"]: c for c in _json(task_definition)["containerDefinitions"]}


def _environment(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("environment", [])}


@pytest.fixture(scope="module")
def instances() -> tuple[dict, dict]:
    return validated_instance(ECS), validated_instance(DEPLOYMENT)


def test_the_ecs_instance_differs_from_the_host_only_in_how_runs_start(instances) -> None:
    ecs, host = instances
    for section in ("storage", "compute_logs", "run_coordinator", "run_retries", "retention", "telemetry"):
        assert ecs[section] == host[section], section
    assert "run_launcher" not in host
    monitoring = {k: v for k, v in ecs["run_monitoring"].items() if k != "max_resume_run_attempts"}
    assert monitoring == {k: v for k, v in host["run_monitoring"].items() if k != "max_resume_run_attempts"}
    # Resuming needs a launcher that can start a replacement worker: ECS can, one host cannot.
    assert host["run_monitoring"]["max_resume_run_attempts"] == 0
    assert ecs["run_monitoring"]["max_resume_run_attempts"] >= 1


def test_launcher_config_passes_the_ecs_launchers_own_schema(instances, monkeypatch) -> None:
    from dagster._config import process_config
    from dagster_aws.ecs import EcsRunLauncher

    section = instances[0]["run_launcher"]
    assert (section["module"], section["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    monkeypatch.setenv("DAGSTER_ECS_RUN_TASK_DEFINITION", "card-fraud-run")
    assert process_config(EcsRunLauncher.config_type(), section["config"]).success
    broken = {**section["config"], "task_definitoin": "card-fraud-run"}
    assert not process_config(EcsRunLauncher.config_type(), broken).success


def _env_references(node) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_references(value) for value in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_references(value) for value in node)) if node else set()
    return set()


def _provided(container: dict) -> set[str]:
    return set(_environment(container)) | {secret["name"] for secret in container.get("secrets", [])}


def test_every_process_that_opens_the_instance_has_its_settings(instances) -> None:
    """Opening the instance builds the run launcher: in each container of the Dagster task
    (sensors open it in the code server) and in each run, which gets the launching task's
    env_vars on top of its own task definition."""
    needed = _env_references(instances[0])
    assert {"DAGSTER_ECS_RUN_TASK_DEFINITION", "DAGSTER_PG_PASSWORD"} <= needed
    for name, container in _containers("task-definition-dagster.json").items():
        assert needed <= _provided(container), (name, needed - _provided(container))
    run_container = _containers("task-definition-run.json")["run"]
    forwarded = set(instances[0]["run_launcher"]["config"]["env_vars"])
    assert needed <= forwarded | _provided(run_container)


def test_every_setting_handed_to_runs_is_set_where_runs_are_launched(instances) -> None:
    """An env_vars name unset in the launching process fails every launch."""
    launcher = instances[0]["run_launcher"]["config"]
    daemon = _environment(_containers("task-definition-dagster.json")["daemon"])
    assert set(launcher["env_vars"]) <= set(daemon)
    assert daemon[launcher["task_definition"]["env"]] == _json("task-definition-run.json")["family"]


@pytest.fixture
def moto_ecs(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3

        yield boto3.client("ecs", region_name=REGION)


def _launcher(instances):
    from dagster._serdes.config_class import ConfigurableClassData

    section = instances[0]["run_launcher"]
    return ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section["config"])).rehydrate()


def test_dagster_builds_the_launcher_on_the_registered_run_task_definition(instances, moto_ecs, monkeypatch) -> None:
    from dagster_aws.ecs import EcsRunLauncher

    registered = moto_ecs.register_task_definition(**_json("task-definition-run.json"))["taskDefinition"]
    monkeypatch.setenv("DAGSTER_ECS_RUN_TASK_DEFINITION", "card-fraud-run")
    launcher = _launcher(instances)
    assert isinstance(launcher, EcsRunLauncher)
    assert launcher.task_definition == registered["taskDefinitionArn"]
    assert launcher.container_name == "run"
    assert launcher.secrets_tags == [] and launcher.use_current_ecs_task_config


def test_the_launcher_refuses_a_task_definition_without_its_container(instances, moto_ecs, monkeypatch) -> None:
    definition = _json("task-definition-run.json")
    definition["containerDefinitions"][0]["name"] = "main"
    moto_ecs.register_task_definition(**definition)
    monkeypatch.setenv("DAGSTER_ECS_RUN_TASK_DEFINITION", "card-fraud-run")
    with pytest.raises(Exception, match="container is not defined"):
        _launcher(instances)


@pytest.mark.parametrize("name", ["task-definition-dagster.json", "task-definition-run.json"])
def test_task_definition_matches_the_ecs_api_model(name: str) -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model("ecs").operation_model(
        "RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(_json(name), shape).generate_report()
    assert not report, report


@pytest.mark.parametrize("name", ["task-definition-dagster.json", "task-definition-run.json"])
def test_task_containers_are_unprivileged_and_log_to_the_project(name: str) -> None:
    definition = _json(name)
    assert definition["networkMode"] == "awsvpc" and definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["executionRoleArn"].endswith(":role/CardFraudTaskExecutionRole")
    images = set()
    for container in definition["containerDefinitions"]:
        images.add(container["image"])
        assert container["user"] == "10001:10001"
        assert container["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
        assert not container.get("privileged", False)
        # As in docker-compose.yml: nothing in the image is written; /tmp is the task's own.
        assert container["readonlyRootFilesystem"] is True
        (mount,) = container["mountPoints"]
        assert mount["containerPath"] == "/tmp"
        assert mount["sourceVolume"] in {v["name"] for v in definition["volumes"]}
        log = container["logConfiguration"]
        assert log["logDriver"] == "awslogs" and log["options"]["awslogs-group"] == "/card-fraud/dagster"
        environment = _environment(container)
        assert environment["DAGSTER_HOME"] == HOME
        assert not [key for key in environment if "PASSWORD" in key or "SECRET" in key]
        assert [s["name"] for s in container["secrets"]] == ["DAGSTER_PG_PASSWORD"]
        assert container["secrets"][0]["valueFrom"].startswith("arn:aws:secretsmanager:")
    assert len(images) == 1  # one image: the runs execute the code the code server serves


def test_the_image_holds_the_ecs_instance_where_the_tasks_look() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"COPY deployment/ecs/dagster.yaml {HOME}/dagster.yaml" in dockerfile
    workspace = "/opt/card-fraud/deployment/workspace.yaml"
    assert f"COPY deployment/workspace.yaml {workspace}" in dockerfile
    for container in _containers("task-definition-dagster.json").values():
        command = container["command"]
        if "-w" in command:
            assert command[command.index("-w") + 1] == workspace


def test_the_dagster_task_serves_on_its_own_loopback_only() -> None:
    containers = _containers("task-definition-dagster.json")
    assert set(containers) == {"code-server", "webserver", "daemon"}
    for container in containers.values():
        assert "portMappings" not in container
        command = container["command"]
        if "-h" in command:
            assert command[command.index("-h") + 1] == "127.0.0.1"
    workspace = yaml.safe_load((DEPLOYMENT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "127.0.0.1"
    definition = _json("task-definition-dagster.json")
    assert definition["taskRoleArn"].endswith(":role/CardFraudDagsterTaskRole")
    assert _json("task-definition-run.json")["taskRoleArn"].endswith(":role/CardFraudRunTaskRole")


# ---------------------------------------------------------------------------------------
# IAM

PERMISSION_POLICIES = ["iam-task-role-policy.json", "iam-launcher-policy.json", "iam-execution-role-policy.json"]
# Community auditors flag what these roles exist for; each finding is expected, and only it.
EXPECTED_COMMUNITY_FINDINGS = {
    "iam-task-role-policy.json": set(),
    # The launcher hands the run roles to ECS (limited to those two roles, to ECS only).
    "iam-launcher-policy.json": {("PERMISSIONS_MANAGEMENT_ACTIONS", "iam:passrole")},
    # ECR's login token: what pulling a private image needs; the API has no resource.
    "iam-execution-role-policy.json": {("CREDENTIALS_EXPOSURE", "ecr:getauthorizationtoken")},
}


def _parliament(name: str, *extra: str) -> tuple[int, list[dict]]:
    result = run([sys.executable, str(PARLIAMENT), "--json", "--minimum_severity", "INFO", *extra],
                 input=(ECS / name).read_text())
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("name", PERMISSION_POLICIES)
def test_parliament_core_finds_nothing(name: str) -> None:
    assert _parliament(name) == (0, [])


@pytest.mark.parametrize("name", PERMISSION_POLICIES)
def test_parliament_community_finds_only_what_the_role_is_for(name: str) -> None:
    _, findings = _parliament(name, "--include-community-auditors")
    found = {(f["issue"], action) for f in findings for action in f["location"].get("actions", ["?"])}
    assert found == EXPECTED_COMMUNITY_FINDINGS[name]


def test_task_trust_lets_only_ecs_tasks_assume() -> None:
    (statement,) = _json("iam-task-trust-policy.json")["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"


def test_task_role_has_exactly_the_host_roles_s3_rights() -> None:
    """So the access matrix and moto enforcement of iam-role-policy.json hold for tasks too.
    One more grant: every process that opens the instance builds the ECS launcher, which
    reads its task definition (IAM cannot scope that call to a resource). One less: the
    `mlflow/` prefix belongs to the host's MLflow server, which run tasks reach over HTTP
    (it proxies their artifacts), so tasks get no rights there."""
    host = json.loads((DEPLOYMENT / "iam-role-policy.json").read_text())
    s3 = [s for s in host["Statement"]
          if all(a.startswith("s3:") for a in _as_list(s["Action"])) and "Mlflow" not in s["Sid"]]
    *statements, describe = _json("iam-task-role-policy.json")["Statement"]
    assert statements == s3
    assert (describe["Action"], describe["Resource"]) == ("ecs:DescribeTaskDefinition", "*")


def _dagster_aws_ecs_calls() -> set[str]:
    """ECS API calls the installed dagster-aws makes from its launcher and executor."""
    import dagster_aws.ecs

    folder = Path(dagster_aws.ecs.__file__).parent
    calls = set()
    for source in ("launcher.py", "executor.py", "tasks.py", "utils.py"):
        for method in re.findall(r"\becs\.(\w+)\(", (folder / source).read_text()):
            calls.add("ecs:" + "".join(part.title() for part in method.split("_")))
    return calls


def test_launcher_role_grants_every_ecs_call_dagster_makes_and_nothing_wider() -> None:
    policy = _json("iam-launcher-policy.json")
    granted = {a for s in policy["Statement"] for a in _as_list(s["Action"])}
    calls = _dagster_aws_ecs_calls()
    assert {"ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "ecs:DescribeTaskDefinition"} <= calls
    # Registering is only for launchers without a task definition; this one names its own.
    assert calls - {"ecs:RegisterTaskDefinition"} <= granted
    assert "ecs:RegisterTaskDefinition" not in granted
    for statement in policy["Statement"]:
        actions = _as_list(statement["Action"])
        assert all("*" not in a for a in actions), actions
        if "*" in _as_list(statement["Resource"]):
            # Only calls that IAM cannot scope to a resource.
            assert set(actions) <= {"ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"}
        if "ecs:RunTask" in actions:
            assert statement["Resource"] == "arn:aws:ecs:*:*:task-definition/card-fraud-run:*"
            assert statement["Condition"] == {"ArnEquals": {"ecs:cluster": "arn:aws:ecs:*:*:cluster/card-fraud"}}
        if "iam:PassRole" in actions:
            assert actions == ["iam:PassRole"]
            assert {r.rsplit("/", 1)[1] for r in statement["Resource"]} == {
                "CardFraudRunTaskRole", "CardFraudTaskExecutionRole"}
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_execution_role_reads_only_the_database_secret_and_the_project_image() -> None:
    grants = {a: _as_list(s["Resource"]) for s in _json("iam-execution-role-policy.json")["Statement"]
              for a in _as_list(s["Action"])}
    assert grants["secretsmanager:GetSecretValue"] == [
        "arn:aws:secretsmanager:*:*:secret:card-fraud/dagster-pg-password-*"]
    secret = _containers("task-definition-run.json")["run"]["secrets"][0]["valueFrom"]
    assert secret.split(":secret:")[1] + "-*" == grants["secretsmanager:GetSecretValue"][0].split(":secret:")[1]
    assert grants["ecr:BatchGetImage"] == ["arn:aws:ecr:*:*:repository/card-fraud"]
    image = _containers("task-definition-run.json")["run"]["image"]
    assert image.split("/", 1)[1].split(":")[0] == "card-fraud"


def test_fraud_executor_ecs_gives_every_job_the_ecs_executor(monkeypatch) -> None:
    monkeypatch.setenv("FRAUD_EXECUTOR", "ecs")
    from fraud_assets.definitions import build_definitions

    definitions = build_definitions("production")
    job = definitions.resolve_job_def("training_job")
    assert job.executor_def.name == "ecs"
    monkeypatch.setenv("FRAUD_EXECUTOR", "kubernetes")
    with pytest.raises(ValueError, match="FRAUD_EXECUTOR"):
        build_definitions("production")
