"""docker-compose.monitoring.yml up for real, with Prometheus, the Pushgateway, Alertmanager
and the node exporter built from Debian's packages (deployment/docker/monitoring/Dockerfile).

Grafana is left out: Debian does not package it and no registry is reachable here, so its
provisioning and dashboards are only checked as files (monitoring/test_compose_and_grafana.py).

The compose file and monitoring/ are copied unchanged into a temporary project folder
beside secret files made as monitoring/README.md says, and Debian's docker-compose starts
the four services under a project name of its own, with free host ports (still on
127.0.0.1). A second compose file only renames what the file names globally (containers,
networks), so the test never meets a real deployment on the same host; where / is not a
shared mount (containers, some CI machines: Docker refuses `rslave` there) it also mounts
the host's / into the node exporter without propagation. A scoring run's metrics are pushed
from the host the way a batch run's are, with the project's own telemetry code.

About a minute when the base image exists: builds (seconds once cached), the first health
checks (30 s interval), then one or two scrape and rule evaluation intervals (15 s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from fraud_assets_tests.services.s3_server import free_port

from .conftest import REPO
from .docker_engine import build_monitoring_images, compose_binary, docker

pytestmark = [pytest.mark.docker, pytest.mark.integration]

SERVICES = ("prometheus", "pushgateway", "alertmanager", "node-exporter")
PUBLISHED = {"prometheus": "9090", "pushgateway": "9091", "alertmanager": "9093"}
NOBODY = "65534"
# Bookworm's version where it differs from the compose file's upstream tag (same flags).
DEBIAN_BEHIND = {"node-exporter": "1.5.0"}
HEALTH_TIMEOUT_S = 240
SCRAPE_TIMEOUT_S = 90
MONITORING = REPO / "monitoring"


@dataclass
class MonitoringStack:
    folder: Path
    project: str
    env: dict[str, str]
    ports: dict[str, int]
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)

    def mark(self, milestone: str) -> None:
        self.timings[milestone] = round(time.monotonic() - self.started, 1)

    def compose(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        files = ["-f", "docker-compose.monitoring.yml", "-f", "isolation.yml"]
        result = subprocess.run(
            [compose_binary(), "-p", self.project, *files, *args], cwd=self.folder, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result

    def container(self, service: str) -> str:
        # Named by isolation.yml: one `docker inspect` instead of a docker-compose process
        # (a second of CPU each) per poll.
        return f"{self.project}-{service}"

    def inspect(self, *services: str) -> list[dict]:
        return json.loads(docker("inspect", *map(self.container, services)).stdout)

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", f"--tail={tail}", check=False).stdout

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def api(self, service: str, path: str, **params) -> dict:
        response = requests.get(self.url(service, path), params=params, timeout=10)
        response.raise_for_status()
        return response.json()


def _root_is_shared_mount() -> bool:
    """Whether / carries a propagation tag (shared or slave), which `rslave` needs."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            optional = fields[6:fields.index("-")]
            return any(tag.startswith(("shared:", "master:")) for tag in optional)
    return False


def _write_project(folder: Path, project: str) -> None:
    shutil.copy(REPO / "docker-compose.monitoring.yml", folder)
    shutil.copytree(MONITORING, folder / "monitoring", ignore=shutil.ignore_patterns("secrets"))
    secrets_dir = folder / "monitoring" / "secrets"
    secrets_dir.mkdir()
    # As monitoring/README.md makes them: owned by the image's user, readable by it alone.
    # The webhook points at the discard port, so an alert that fires here leaves no machine.
    for name, value, owner in (("slack_webhook_url", "http://127.0.0.1:9/slack", 65534),
                               ("grafana_admin_password", uuid.uuid4().hex, 472)):
        path = secrets_dir / name
        path.write_text(value + "\n")
        os.chown(path, owner, owner)
        path.chmod(0o400)
    isolation: dict = {
        "services": {name: {"container_name": f"{project}-{name}"} for name in SERVICES},
        "networks": {key: {"name": f"{project}-{key}"} for key in ("monitoring", "push")},
    }
    if not _root_is_shared_mount():
        isolation["services"]["node-exporter"]["volumes"] = ["/:/host:ro"]
    (folder / "isolation.yml").write_text(yaml.safe_dump(isolation))


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.skip("the monitoring stack test runs as root (it owns secrets as the images' users)")
    compose_binary()
    started = time.monotonic()
    built = build_monitoring_images()
    print(f"monitoring images built in {time.monotonic() - started:.0f} s")
    return built


@pytest.fixture(scope="module")
def stack(images: dict[str, str], tmp_path_factory) -> Iterator[MonitoringStack]:
    folder = tmp_path_factory.mktemp("monitoring-stack")
    project = f"fraudmontest{uuid.uuid4().hex[:8]}"
    ports = {service: free_port() for service in PUBLISHED}
    env = {
        **os.environ,
        **{f"{service.upper().replace('-', '_')}_IMAGE": image for service, image in images.items()},
        **{f"{service.upper()}_PORT": str(port) for service, port in ports.items()},
        "GRAFANA_PORT": str(free_port()),
    }
    stack = MonitoringStack(folder=folder, project=project, env=env, ports=ports)
    _write_project(folder, project)
    try:
        stack.compose("up", "-d", "--no-build", *SERVICES)
        stack.mark("compose up returned")
        _wait_healthy(stack)
        stack.mark("all healthy")
        yield stack
    finally:
        if os.environ.get("CARD_FRAUD_KEEP_STACK") != "1":
            stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
        print(f"monitoring stack milestones (s from compose up): {stack.timings}")


def _wait_healthy(stack: MonitoringStack) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    status: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = [info["State"] for info in stack.inspect(*SERVICES)]
        status = {s: st.get("Health", {}).get("Status", st["Status"]) for s, st in zip(SERVICES, states, strict=True)}
        if all(value == "healthy" for value in status.values()):
            return
        time.sleep(3)
    pytest.fail(f"not healthy after {HEALTH_TIMEOUT_S} s: {status}\n{stack.logs()}")


def _eventually(check, what: str, timeout: float = SCRAPE_TIMEOUT_S):
    """check() until it returns something truthy: scrapes and evaluations are 15 s apart."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    pytest.fail(f"{what} not within {timeout:.0f} s (last: {last!r})")


def _query(stack: MonitoringStack, expr: str) -> dict[str, float]:
    """job label -> value of an instant query."""
    data = stack.api("prometheus", "/api/v1/query", query=expr)["data"]
    return {r["metric"].get("job", ""): float(r["value"][1]) for r in data["result"]}


def test_programs_run_as_nobody_in_the_compose_files_versions(stack: MonitoringStack, images: dict[str, str]) -> None:
    defaults = yaml.safe_load((REPO / "docker-compose.monitoring.yml").read_text())["services"]
    for service in SERVICES:
        (info,) = stack.inspect(service)
        assert info["Config"]["Image"] == images[service], service
        assert docker("exec", info["Id"], "id", "-u").stdout.strip() == NOBODY, service
        shown = docker("exec", info["Id"], info["Path"], "--version")
        (version,) = re.findall(r"version (\d+\.\d+\.\d+)", shown.stdout + shown.stderr)
        pinned = re.search(r":v(\d+\.\d+\.\d+)\}$", defaults[service]["image"]).group(1)
        assert version == DEBIAN_BEHIND.get(service, pinned), (service, version, pinned)


def test_prometheus_loaded_every_rule_of_the_project(stack: MonitoringStack) -> None:
    assert requests.get(stack.url("prometheus", "/-/ready"), timeout=10).status_code == 200
    expected = set()
    for path in sorted((MONITORING / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            expected |= {(group["name"], rule.get("alert") or rule["record"]) for rule in group["rules"]}
    groups = stack.api("prometheus", "/api/v1/rules")["data"]["groups"]
    loaded = {(group["name"], rule["name"]) for group in groups for rule in group["rules"]}
    assert loaded == expected
    kinds = {rule["type"] for group in groups for rule in group["rules"]}
    assert kinds == {"alerting", "recording"}
    # Evaluated against the real TSDB without an error (a rule's health is "unknown" until
    # its group first runs, within one evaluation interval).
    def evaluated() -> list[dict]:
        rules = [r for g in stack.api("prometheus", "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        return rules if all(r["health"] != "unknown" for r in rules) else []
    failing = [(r["name"], r.get("lastError")) for r in _eventually(evaluated, "every rule evaluated")
               if r["health"] != "ok"]
    assert failing == []


def test_prometheus_scrapes_the_stack_and_reaches_alertmanager(stack: MonitoringStack) -> None:
    wanted = {"prometheus", "pushgateway", "alertmanager", "node"}

    def up() -> dict[str, str]:
        targets = stack.api("prometheus", "/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if all(health.get(job) == "up" for job in wanted) else {}

    health = _eventually(up, f"scrape targets {sorted(wanted)} up")
    stack.mark("scrape targets up")
    # The scoring service belongs to the other compose project and is not started here.
    assert set(health) == wanted | {"fraud-inference"}
    # The node exporter reports from the host's view (--path.rootfs=/host).
    assert _query(stack, 'node_filesystem_size_bytes{job="node",mountpoint="/"}')
    alertmanagers = stack.api("prometheus", "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in alertmanagers] == ["http://alertmanager:9093/api/v2/alerts"]


def test_a_pushed_scoring_run_reaches_prometheus_and_is_counted_once(stack: MonitoringStack) -> None:
    from fraud_assets.core.monitoring.telemetry import push_scoring_metrics

    rows, flagged = 4_321, 17
    pushed_at = time.time()
    assert push_scoring_metrics(stack.url("pushgateway", ""), rows=rows, flagged=flagged,
                                seconds=2.5, model_version="monitoring-stack-test")
    seen = _eventually(lambda: _query(stack, "fraud_scoring_rows"), "the pushed run in Prometheus")
    stack.mark("pushed run scraped")
    # honor_labels keeps the pushed job instead of job="pushgateway".
    assert seen == {"fraud_scoring": rows}
    (success,) = _query(stack, "fraud_scoring_last_success_timestamp_seconds").values()
    assert pushed_at - 1 <= success <= time.time()
    # The run totals rules see the new run in real evaluations and count it exactly once.
    totals = _eventually(lambda: _query(stack, "job:fraud_scoring_rows:sum_1d"), "the daily totals")
    assert totals == {"fraud_scoring": rows}
    assert _query(stack, "job:fraud_scoring_runs:sum_1d") == {"fraud_scoring": 1}
    assert _query(stack, "job:fraud_scoring_flagged:sum_1d") == {"fraud_scoring": flagged}


def test_alertmanager_is_ready_with_the_projects_receivers(stack: MonitoringStack) -> None:
    assert requests.get(stack.url("alertmanager", "/-/ready"), timeout=10).status_code == 200
    status = stack.api("alertmanager", "/api/v2/status")
    loaded = yaml.safe_load(status["config"]["original"])
    project = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    assert [r["name"] for r in loaded["receivers"]] == [r["name"] for r in project["receivers"]]
    assert loaded["route"]["receiver"] == project["route"]["receiver"]
    # The webhook is read from the secret file at send time, never held in the config.
    assert loaded["global"]["slack_api_url_file"] == "/run/secrets/slack_webhook_url"
    assert "slack_api_url" not in loaded["global"]
    assert status["cluster"]["status"] == "disabled"


def test_only_the_declared_ports_listen_and_only_on_loopback(stack: MonitoringStack) -> None:
    published = {}
    for service in SERVICES:
        (info,) = stack.inspect(service)
        ports = info["NetworkSettings"]["Ports"] or {}
        published[service] = {
            container: [(b["HostIp"], b["HostPort"]) for b in bindings]
            for container, bindings in ports.items() if bindings
        }
    assert published == {
        "node-exporter": {},
        **{service: {f"{port}/tcp": [("127.0.0.1", str(stack.ports[service]))]}
           for service, port in PUBLISHED.items()},
    }
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    for port in stack.ports.values():
        addresses = re.findall(rf"^\S+\s+\d+\s+\d+\s+(\S+):{port}\s", listening, flags=re.MULTILINE)
        assert addresses and set(addresses) == {"127.0.0.1"}, (port, addresses)
