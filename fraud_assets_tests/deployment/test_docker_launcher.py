"""deployment/docker/dagster.yaml and deployment/compose.docker-launcher.yml: every run in a
container of its own with Dagster's DockerRunLauncher, checked offline.

The instance file against Dagster's own schema, the launcher built from it by Dagster, its
container arguments through docker-py's own translation into a create request (which
rejects what the Docker API does not know), and the overlay against the Compose
Specification and the files it must agree with. No container is started here.
"""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import DEPLOYMENT, REPO, run, validated_instance, venv_tool

INSTANCE_DIR = DEPLOYMENT / "docker"
OVERLAY = DEPLOYMENT / "compose.docker-launcher.yml"
COMPOSE = REPO / "docker-compose.yml"
HOME = "/var/lib/card-fraud/docker"


def _with_defaults(text: str) -> str:
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    return re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "999", text)


@pytest.fixture(scope="module")
def instances() -> tuple[dict, dict]:
    return validated_instance(INSTANCE_DIR), validated_instance(DEPLOYMENT)


@pytest.fixture(scope="module")
def overlay() -> dict:
    return yaml.safe_load(_with_defaults(OVERLAY.read_text()))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(_with_defaults(COMPOSE.read_text()))


@pytest.fixture
def launcher_env(monkeypatch):
    monkeypatch.setenv("CARD_FRAUD_IMAGE", "card-fraud:latest")
    monkeypatch.setenv("CARD_FRAUD_RUN_NETWORK", "card-fraud-runs")


def test_the_instance_differs_from_the_host_only_in_how_runs_start(instances) -> None:
    docker, host = instances
    for section in ("storage", "compute_logs", "run_coordinator", "run_retries", "retention", "telemetry"):
        assert docker[section] == host[section], section
    strip = lambda m: {k: v for k, v in m.items() if k != "max_resume_run_attempts"}  # noqa: E731
    assert strip(docker["run_monitoring"]) == strip(host["run_monitoring"])
    assert docker["run_monitoring"]["max_resume_run_attempts"] >= 1


def test_launcher_config_passes_the_docker_launchers_own_schema(instances, launcher_env) -> None:
    from dagster._config import process_config
    from dagster_docker import DockerRunLauncher

    section = instances[0]["run_launcher"]
    assert (section["module"], section["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert process_config(DockerRunLauncher.config_type(), section["config"]).success
    assert not process_config(DockerRunLauncher.config_type(), {**section["config"], "imagen": "x"}).success


def _launcher(instances):
    from dagster._serdes.config_class import ConfigurableClassData

    section = instances[0]["run_launcher"]
    return ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section["config"])).rehydrate()


def test_dagster_builds_the_launcher_from_the_environment(instances, launcher_env) -> None:
    from dagster_docker import DockerRunLauncher
    from dagster_docker.utils import validate_docker_image

    launcher = _launcher(instances)
    assert isinstance(launcher, DockerRunLauncher)
    assert launcher.image == "card-fraud:latest" and launcher.networks == ["card-fraud-runs"]
    validate_docker_image(launcher.image)
    assert launcher.supports_check_run_worker_health and launcher.supports_resume_run


def test_docker_py_turns_the_container_arguments_into_a_create_request(instances, launcher_env) -> None:
    """docker-py maps keyword arguments onto the Engine API; an unknown one raises here."""
    from docker.models.containers import _create_container_args

    launcher = _launcher(instances)
    request = _create_container_args({
        "image": launcher.image, "command": ["dagster", "api", "execute_run", "{}"], "detach": True,
        "environment": {"FRAUD_ENV": "production"}, "network": launcher.networks[0],
        "labels": {"dagster/run_id": "r"}, **{k: v for k, v in launcher.container_kwargs.items() if k != "labels"},
        # Debian's engine 20.10, the oldest this project runs on, speaks API 1.41.
        "version": "1.41",
    })
    host = request["host_config"]
    assert host["ReadonlyRootfs"] is True and host["AutoRemove"] is True and host["Init"] is True
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Tmpfs"] == {"/tmp": "size=512m,mode=1777"}
    assert host["Memory"] == 8 * 2**30
    with pytest.raises(TypeError):
        _create_container_args({"image": "x", "read_only_root": True, "version": "1.41"})


def test_run_containers_are_hardened_like_the_compose_containers(instances, compose) -> None:
    kwargs = instances[0]["run_launcher"]["config"]["container_kwargs"]
    dagster_service = compose["services"]["daemon"]
    assert kwargs["read_only"] is dagster_service["read_only"] is True
    assert kwargs["cap_drop"] == dagster_service["cap_drop"]
    assert kwargs["security_opt"] == dagster_service["security_opt"]
    assert kwargs["init"] is dagster_service["init"] is True
    (tmpfs,) = dagster_service["tmpfs"]
    assert tmpfs.startswith("/tmp:") and "/tmp" in kwargs["tmpfs"]


def _set_names_in(env_file_text: str) -> set[str]:
    return {line.split("=", 1)[0] for line in env_file_text.splitlines() if re.match(r"^[A-Z0-9_]+=", line)}


def test_every_setting_handed_to_runs_is_set_in_the_launching_container(instances, compose, overlay) -> None:
    """An env_vars name unset in the daemon fails every launch."""
    env_vars = instances[0]["run_launcher"]["config"]["env_vars"]
    daemon = compose["services"]["daemon"]
    available = (
        _set_names_in((DEPLOYMENT / "compose.env.example").read_text())
        | set(daemon["environment"]) | set(overlay["services"]["daemon"]["environment"])
    )
    # The entry point exports VAR from VAR_FILE: the password file is required, never empty.
    available |= {name.removesuffix("_FILE") for name in daemon["environment"] if name.endswith("_FILE")}
    assert set(env_vars) <= available, set(env_vars) - available
    assert "FRAUD_SLACK_WEBHOOK_URL" not in env_vars  # its secret file may be empty (alerts off)
    # A run container is removed when it ends: its training must log to the stack's server.
    assert "MLFLOW_TRACKING_URI" in env_vars


def _env_references(node) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_references(value) for value in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_references(value) for value in node)) if node else set()
    return set()


def test_every_process_that_opens_the_instance_has_its_settings(instances, compose, overlay) -> None:
    """Opening the instance builds the run launcher: in the daemon, the webserver, the code
    server (sensors) and each run. A name missing anywhere broke that process (found by
    test_docker_launcher_stack.py: every sensor tick failed in the code server)."""
    needed = _env_references(instances[0])
    assert {"CARD_FRAUD_IMAGE", "CARD_FRAUD_RUN_NETWORK", "DAGSTER_PG_PASSWORD"} <= needed
    common = (_set_names_in((DEPLOYMENT / "compose.env.example").read_text())
              | set(compose["services"]["daemon"]["environment"]))
    common |= {name.removesuffix("_FILE") for name in common if name.endswith("_FILE")}
    for service in ("daemon", "webserver", "code-server"):
        available = common | set(overlay["services"][service]["environment"])
        assert needed <= available, (service, needed - available)
    assert needed <= set(instances[0]["run_launcher"]["config"]["env_vars"])


def test_overlay_points_the_launcher_at_the_image_the_network_and_the_socket(overlay, compose) -> None:
    services = overlay["services"]
    for name in ("daemon", "webserver"):  # the webserver stops containers when a run is cancelled
        service = services[name]
        assert service["environment"]["DAGSTER_HOME"] == HOME
        assert service["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock"]
        assert service["group_add"] == [999]  # the variable, given a value by _with_defaults
        assert service["environment"]["CARD_FRAUD_IMAGE"] == compose["services"]["daemon"]["image"]
        assert service["environment"]["CARD_FRAUD_RUN_NETWORK"] == overlay["networks"]["default"]["name"]
    assert services["code-server"]["environment"] == services["daemon"]["environment"]
    assert "volumes" not in services["code-server"]
    assert f"COPY deployment/docker/dagster.yaml {HOME}/dagster.yaml" in (REPO / "Dockerfile").read_text()
    # The socket's group must be given: no default that silently denies access.
    assert "${CARD_FRAUD_DOCKER_GID:?" in OVERLAY.read_text()


def test_overlay_matches_compose_spec() -> None:
    result = run([venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(OVERLAY)])
    assert result.returncode == 0, result.stdout + result.stderr
