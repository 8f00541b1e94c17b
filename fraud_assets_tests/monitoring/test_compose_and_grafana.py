"""docker-compose.monitoring.yml, Grafana provisioning and dashboards, checked offline."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from fraud_assets.core.monitoring.telemetry import names
from fraud_assets_tests.services.prometheus_stack import MONITORING_DIR, REPO_ROOT

# Its compose-spec schema check is in deployment/test_container_files.py.
COMPOSE_FILE = REPO_ROOT / "docker-compose.monitoring.yml"
GRAFANA_DIR = MONITORING_DIR / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"
DASHBOARD_FILES = ("pipeline-health.json", "model-quality.json", "drift.json")
# Metrics a dashboard may read besides the ones the batch jobs push.
PROMETHEUS_OWN_METRICS = {"up"}


# ${NAME:-default}: the only form of variable the file may use.
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+):-([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    """The file as compose reads it with none of its variables set."""
    return yaml.safe_load(VARIABLE.sub(r"\2", COMPOSE_FILE.read_text()))


def test_compose_runs_the_whole_stack(compose: dict) -> None:
    assert set(compose["services"]) == {
        "prometheus", "pushgateway", "alertmanager", "grafana", "node-exporter"
    }
    # Phase 7 of the deployment guide runs `docker exec fraud-grafana ...`.
    assert compose["services"]["grafana"]["container_name"] == "fraud-grafana"


def test_published_ports_bind_loopback_only(compose: dict) -> None:
    for name, service in compose["services"].items():
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):
            text = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            assert text.startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"


def test_images_are_pinned(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and "/" not in tag, f"{name}: {image}"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not an exact version"


def test_images_and_host_ports_come_from_variables_with_defaults() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    # Without a default, an unset variable becomes an empty image name or port.
    uncommented = re.sub(r"(?m)^\s*#.*$", "", COMPOSE_FILE.read_text())
    assert re.findall(r"\$\{[A-Z0-9_]+\}|\$[A-Za-z]", uncommented) == []
    for name, service in raw["services"].items():
        # Where Docker Hub is out of reach, each image is swapped for one built locally.
        variable = name.upper().replace("-", "_") + "_IMAGE"
        assert VARIABLE.fullmatch(service["image"]).group(1) == variable, (name, service["image"])
        for port in service.get("ports", []):
            # A second stack (a test's) on the same host needs other host ports.
            bound = re.fullmatch(r"127\.0\.0\.1:\$\{([A-Z_]+):-\d+\}:\d+", port)
            assert bound and bound.group(1) == name.upper() + "_PORT", (name, port)


def test_state_lives_in_volumes(compose: dict) -> None:
    expected = {
        "prometheus": "/prometheus",
        "pushgateway": "/pushgateway",
        "alertmanager": "/alertmanager",
        "grafana": "/var/lib/grafana",
    }
    named = set(compose["volumes"])
    for service, target in expected.items():
        mounts = [m.split(":") for m in compose["services"][service]["volumes"]]
        assert any(src in named and dst == target for src, dst, *_ in mounts), service
    command = " ".join(compose["services"]["pushgateway"]["command"])
    assert "--persistence.file=/pushgateway/" in command


def test_bind_mounted_files_exist(compose: dict) -> None:
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"


def test_grafana_is_locked_down(compose: dict) -> None:
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "grafana_admin_password" in grafana["secrets"]


def test_secrets_come_from_untracked_files(compose: dict) -> None:
    secrets = compose["secrets"]
    assert set(secrets) == {"grafana_admin_password", "slack_webhook_url"}
    for secret in secrets.values():
        assert secret["file"].startswith("./monitoring/secrets/")
    ignore = (MONITORING_DIR / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignore
    assert "slack_webhook_url" in compose["services"]["alertmanager"]["secrets"]


def test_alertmanager_has_no_gossip_port(compose: dict) -> None:
    assert "--cluster.listen-address=" in compose["services"]["alertmanager"]["command"]


def test_container_paths_match_configs(compose: dict) -> None:
    prometheus_mounts = compose["services"]["prometheus"]["volumes"]
    assert "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus_mounts
    assert "./monitoring/rules:/etc/prometheus/rules:ro" in prometheus_mounts
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/dashboards.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    grafana_mounts = compose["services"]["grafana"]["volumes"]
    assert f"./monitoring/grafana/dashboards:{path}:ro" in grafana_mounts
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    source = datasources["datasources"][0]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_dashboard_provider_is_a_folder() -> None:
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["folder"]
    assert provider["allowUiUpdates"] is False


# ------------------------------------------------------------------------ dashboards


def load_dashboards() -> dict[str, dict]:
    return {name: json.loads((DASHBOARD_DIR / name).read_text()) for name in DASHBOARD_FILES}


def all_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in all_panels(dashboard) for t in p.get("targets", []) if "expr" in t]


def test_dashboards_are_json_with_unique_stable_uids() -> None:
    assert sorted(p.name for p in DASHBOARD_DIR.glob("*.json")) == sorted(DASHBOARD_FILES)
    dashboards = load_dashboards()
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for name, d in dashboards.items():
        # Stable and human-chosen: links and alerts point at /d/<uid>.
        assert re.fullmatch(r"fraud-[a-z0-9-]+", d["uid"]) and len(d["uid"]) <= 40, name
        assert d.get("id") is None, f"{name}: a database id makes provisioning fight the UI"
        assert d["title"].startswith("Fraud / ")
    titles = [d["title"] for d in dashboards.values()]
    assert len(set(titles)) == len(titles)


def test_dashboards_select_the_datasource_through_a_variable() -> None:
    for name, d in load_dashboards().items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        for panel in all_panels(d):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", f"{name}: {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", f"{name}: {panel['title']}"


def test_dashboard_panels_have_unique_ids_and_fit_the_grid() -> None:
    for name, d in load_dashboards().items():
        ids = [p["id"] for p in all_panels(d)]
        assert len(ids) == len(set(ids)), name
        for panel in all_panels(d):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']}"


def test_dashboards_read_only_metrics_the_jobs_push() -> None:
    known = names.ALL_METRIC_NAMES | PROMETHEUS_OWN_METRICS
    for name, d in load_dashboards().items():
        used: set[str] = set()
        for expr in dashboard_exprs(d):
            cleaned = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
            used |= set(re.findall(r"\bfraud_\w+", cleaned))
        assert used, name
        assert used <= known, f"{name} reads unknown metrics {used - known}"
    every = set().union(*(
        set(re.findall(r"\bfraud_\w+", re.sub(r'"[^"]*"', "", e)))
        for d in load_dashboards().values() for e in dashboard_exprs(d)
    ))
    unused = names.ALL_METRIC_NAMES - every
    assert not unused, f"pushed but on no dashboard: {unused}"
