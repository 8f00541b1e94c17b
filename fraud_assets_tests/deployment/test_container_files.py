"""Dockerfile, .dockerignore, the container entry point and the compose files.

No Docker engine runs here, so the image is never built: hadolint checks the Dockerfile,
check-jsonschema checks the compose files against the Compose Specification, and the
remaining assertions pin the security properties that neither tool knows about.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest
import yaml

from .conftest import DEPLOYMENT, REPO, run, system_tool, venv_tool

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
ENTRYPOINT = DEPLOYMENT / "docker" / "entrypoint.sh"
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|WEBHOOK|ACCESS_KEY", re.IGNORECASE)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in logical]


def test_hadolint_is_silent() -> None:
    result = run([venv_tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_dockerfile_is_multistage_locked_and_non_root() -> None:
    instructions = _instructions()
    froms = [args for op, args in instructions if op == "FROM"]
    assert len(froms) >= 2 and " AS builder" in froms[0]

    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "uv sync --locked --no-dev" in runs

    final_stage = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    assert any(
        op == "COPY" and "--from=builder" in args and ".venv" in args for op, args in final_stage
    ), "the runtime stage must take the venv from the builder, not reinstall"
    users = [args for op, args in final_stage if op == "USER"]
    assert users, "runtime stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert any(op == "HEALTHCHECK" for op, _ in final_stage)


def test_dockerfile_bakes_in_no_secret() -> None:
    for op, args in _instructions():
        if op in {"ENV", "ARG", "LABEL"}:
            assert not SECRETISH.search(args), f"{op} {args}"
        if op in {"COPY", "ADD"}:
            assert "compose.env" not in args and "secrets/" not in args, args


def _dockerignore_allows(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    allowed = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes) or fnmatch.fnmatchcase(path, pat):
            allowed = negate
    return allowed


def test_dockerignore_keeps_what_the_build_copies_and_drops_secrets() -> None:
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    sources = []
    for op, args in _instructions():
        if op == "COPY" and "--from=" not in args:
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            sources.extend(words[:-1])
    assert sources
    for source in sources:
        assert _dockerignore_allows(source.rstrip("/"), patterns), source
        assert (REPO / source).exists(), source
    for private in (
        "deployment/compose.env",
        "deployment/secrets/postgres_password",
        ".venv",
        ".git",
    ):
        assert not _dockerignore_allows(private, patterns), private


def _entrypoint(tmp_path: Path, env: dict[str, str], script: str) -> tuple[int, str, str]:
    sh = system_tool("sh")
    result = run(
        [sh, str(ENTRYPOINT), sh, "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=tmp_path,
    )
    return result.returncode, result.stdout, result.stderr


def test_entrypoint_loads_secret_files(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    code, out, err = _entrypoint(
        tmp_path,
        {"DAGSTER_PG_PASSWORD_FILE": str(password), "FRAUD_SLACK_WEBHOOK_URL_FILE": str(empty)},
        'printf "%s|%s|%s" "$DAGSTER_PG_PASSWORD" "${FRAUD_SLACK_WEBHOOK_URL-unset}" '
        '"${DAGSTER_PG_PASSWORD_FILE-unset}"',
    )
    assert (code, out) == (0, "s3cret|unset|unset"), err


def test_entrypoint_refuses_an_unreadable_secret(tmp_path: Path) -> None:
    code, _, err = _entrypoint(
        tmp_path, {"DAGSTER_PG_PASSWORD_FILE": str(tmp_path / "missing")}, "true"
    )
    assert code != 0 and "DAGSTER_PG_PASSWORD_FILE" in err


OVERLAY = DEPLOYMENT / "compose.monitoring-network.yml"
MONITORING = REPO / "docker-compose.monitoring.yml"
COMPOSE_FILES = [COMPOSE, OVERLAY, MONITORING]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_matches_compose_spec(path: Path) -> None:
    assert path.is_file(), f"{path.name} is missing from the repository"
    result = run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _with_defaults(text: str) -> str:
    """The file as compose reads it with none of its variables set: ${NAME:-default}."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(_with_defaults(COMPOSE.read_text()))


def test_compose_variables_all_have_defaults() -> None:
    # Without a default, a variable left unset becomes an empty image name or port.
    text = COMPOSE.read_text()
    # `$$` is compose's escape for a `$` the container's shell expands.
    assert re.findall(r"\$\{[A-Z0-9_]+\}|\$[A-Z]", text.replace("$$", "")) == []
    names = set(re.findall(r"\$\{([A-Z0-9_]+):-", text))
    assert names == {"CARD_FRAUD_IMAGE", "POSTGRES_IMAGE", "CARD_FRAUD_WEBSERVER_PORT",
                     "CARD_FRAUD_INFERENCE_PORT", "CARD_FRAUD_MLFLOW_PORT",
                     "CARD_FRAUD_DASK_DASHBOARD_PORT", "CARD_FRAUD_DASK_WORKER_MEMORY"}, names


def test_compose_services_share_one_image(compose: dict) -> None:
    services = compose["services"]
    assert {"postgres", "code-server", "webserver", "daemon"} <= set(services)
    images = {services[name]["image"] for name in ("code-server", "webserver", "daemon")}
    assert len(images) == 1
    for name in ("code-server", "webserver", "daemon"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile"


def test_compose_publishes_only_the_uis_and_scoring_on_loopback(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)
    assert services["webserver"]["ports"] == ["127.0.0.1:3100:3100"]
    assert services["fraud-inference"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["mlflow"]["ports"] == ["127.0.0.1:5000:5000"]
    assert services["dask-scheduler"]["ports"] == ["127.0.0.1:8787:8787"]
    assert "ports" not in services["dask-worker"]
    assert "ports" not in services["postgres"]
    assert "ports" not in services["code-server"]


def _published_host_ports(path: Path) -> dict[str, str]:
    """host port -> "file:service" for every port a compose file publishes."""
    published: dict[str, str] = {}
    for name, service in (yaml.safe_load(_with_defaults(path.read_text())).get("services") or {}).items():
        for port in service.get("ports", []):
            host_port = str(port).split(":")[-2]
            assert host_port not in published, (path.name, name, port)
            published[host_port] = f"{path.name}:{name}"
    return published


def test_dagster_and_monitoring_ports_fit_on_one_host() -> None:
    # Both compose projects (and the systemd units) run on the same EC2 host: Grafana keeps
    # 3000, the port its health check `curl http://localhost:3000/api/health` uses, so the
    # Dagster webserver is on 3100.
    app = _published_host_ports(COMPOSE)
    monitoring = _published_host_ports(MONITORING)
    assert not set(app) & set(monitoring), (app, monitoring)
    assert monitoring.get("3000", "").endswith(":grafana")
    assert app.get("3100") == "docker-compose.yml:webserver"
    unit = (DEPLOYMENT / "systemd" / "card-fraud-webserver.service").read_text()
    (port,) = re.findall(r"^ExecStart=\S*dagster-webserver .*-p (\d+)", unit, flags=re.MULTILINE)
    assert port == "3100" and port not in monitoring


def test_compose_keeps_passwords_out_of_the_file(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        env = service.get("environment", {})
        assert isinstance(env, dict), name
        for key, value in env.items():
            if SECRETISH.search(key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password"
    )
    for secret in compose["secrets"].values():
        assert set(secret) == {"file"} and secret["file"].startswith("deployment/secrets/")
    # The filled-in files stay out of git.
    ignored = (DEPLOYMENT / ".gitignore").read_text().split()
    assert "compose.env" in ignored and "secrets/*" in ignored


def test_compose_containers_drop_privileges_and_wait_for_health(compose: dict) -> None:
    services = compose["services"]
    for name in ("code-server", "webserver", "daemon"):
        service = services[name]
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert "healthcheck" in service or name == "code-server", name
    # Health checks do not pass through ENTRYPOINT, so one that opens the instance must call
    # the entry point itself or it runs without DAGSTER_PG_PASSWORD.
    assert services["daemon"]["healthcheck"]["test"][1] == "card-fraud-entrypoint"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code-server"]["condition"] == "service_healthy"
        assert "/opt/card-fraud/deployment/workspace.compose.yaml" in services[name]["command"]


def test_compose_tracks_experiments_on_its_own_mlflow_server(compose: dict) -> None:
    services = compose["services"]
    mlflow = services["mlflow"]
    # The same hardened image and settings as the Dagster services, its own database.
    assert mlflow["image"] == services["code-server"]["image"]
    assert mlflow["read_only"] is True and mlflow["cap_drop"] == ["ALL"]
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    command = mlflow["command"][-1]
    assert "@postgres:5432/mlflow" in command and "s3://$${FRAUD_MODELS_BUCKET}/mlflow" in command
    assert "DAGSTER_PG_PASSWORD" in command and "--allowed-hosts" in command
    # It is given the database password and nothing else the Dagster services hold.
    assert mlflow["secrets"] == ["postgres_password"]
    assert mlflow["environment"] == {"DAGSTER_PG_PASSWORD_FILE": "/run/secrets/postgres_password"}
    for name in ("code-server", "webserver", "daemon"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    init = REPO / "deployment" / "docker" / "postgres" / "initdb"
    assert "./deployment/docker/postgres/initdb:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]
    assert "CREATE DATABASE mlflow OWNER dagster;" in (init / "10-mlflow-database.sql").read_text()


def test_compose_dask_cluster_is_optional_and_hardened(compose: dict) -> None:
    services = compose["services"]
    for name in ("dask-scheduler", "dask-worker"):
        service = services[name]
        # Off unless asked for: `up` without the profile starts today's stack.
        assert service["profiles"] == ["dask"], name
        assert service["image"] == services["code-server"]["image"], name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "secrets" not in service, name
        assert "healthcheck" in service, name
    worker = services["dask-worker"]["command"]
    assert worker[:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert worker[worker.index("--memory-limit") + 1] == "4GiB"
    assert services["dask-worker"]["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"


def test_compose_env_example_documents_the_settings() -> None:
    text = (DEPLOYMENT / "compose.env.example").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    for line in lines:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line), f"not KEY=value: {line!r}"
    for name in (
        "FRAUD_ENV",
        "FRAUD_DATA_BUCKET",
        "FRAUD_MODELS_BUCKET",
        "FRAUD_PREDICTIONS_BUCKET",
        "FRAUD_BACKUP_BUCKET",
        "FRAUD_S3_ENDPOINT_URL",
        "AWS_REGION",
        "FRAUD_PUSHGATEWAY_URL",
        "FRAUD_SLACK_WEBHOOK_URL",
        "DAGSTER_HOME",
        "DAGSTER_PG_PASSWORD",
    ):
        assert name in text, name
    set_keys = {ln.split("=", 1)[0] for ln in lines}
    assert not {"DAGSTER_PG_PASSWORD", "FRAUD_SLACK_WEBHOOK_URL"} & set_keys, "secrets go in files"


def test_overlay_joins_the_monitoring_network_where_the_pushgateway_is() -> None:
    overlay = yaml.safe_load(OVERLAY.read_text())
    # The code server pushes to the Pushgateway; Prometheus scrapes the scoring service.
    assert set(overlay["services"]) == {"code-server", "fraud-inference"}
    assert all(network["external"] is True for network in overlay["networks"].values())
    monitoring = yaml.safe_load(MONITORING.read_text())
    names = {key: network["name"] for key, network in monitoring["networks"].items()}

    def joined(services: dict, service: str, networks: dict) -> set[str]:
        return {networks[key]["name"] if "name" in networks[key] else names[key]
                for key in services[service]["networks"] if key != "default"}

    example = (DEPLOYMENT / "compose.env.example").read_text()
    (url,) = re.findall(r"^FRAUD_PUSHGATEWAY_URL=(\S+)$", example, flags=re.MULTILINE)
    host, port = url.removeprefix("http://").split(":")
    assert port == "9091", "the Pushgateway's own port, not a published host port"
    code_server = joined(overlay["services"], "code-server", overlay["networks"])
    # The runs reach the Pushgateway and nothing else of the monitoring stack, whose other
    # members must not reach the code server's unauthenticated gRPC port either.
    assert code_server & joined(monitoring["services"], host, monitoring["networks"])
    for other in set(monitoring["services"]) - {host}:
        assert not code_server & joined(monitoring["services"], other, monitoring["networks"]), other
    assert names["monitoring"] in joined(overlay["services"], "fraud-inference", overlay["networks"])
    assert names["monitoring"] in joined(monitoring["services"], "prometheus", monitoring["networks"])


def test_prometheus_scrapes_the_scoring_service_where_it_listens(compose: dict) -> None:
    prometheus = yaml.safe_load((REPO / "monitoring" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "fraud-inference"]
    ((target,),) = [c["targets"] for c in job["static_configs"]]
    host, port = target.split(":")
    service = compose["services"][host]
    command = service["command"]
    assert command[:2] == ["fraud", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable on the network
    assert command[command.index("--port") + 1] == port
    overlay = yaml.safe_load(OVERLAY.read_text())
    assert "monitoring" in overlay["services"][host]["networks"]
