"""Offline checks of monitoring/alertmanager.yml with Debian's amtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from fraud_assets_tests.services.prometheus_stack import (
    ALERTMANAGER_CONFIG,
    MONITORING_DIR,
    REPO_ROOT,
    amtool_binary,
    require_binary,
)

SLACK_HOOK = re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+")


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_binary(amtool_binary(), "amtool")


@pytest.fixture
def config_with_secret(tmp_path: Path) -> Path:
    """The shipped config, pointing at a throwaway secret file as in deployment."""
    secret = tmp_path / "slack_webhook_url"
    secret.write_text("https://hooks.slack.invalid/services/T0/B0/test\n")
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["global"]["slack_api_url_file"] = str(secret)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def amtool_run(amtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed tool, arguments built here
        [amtool, *args], capture_output=True, text=True, timeout=30
    )


def test_config_is_valid(amtool: str, config_with_secret: Path) -> None:
    result = amtool_run(amtool, "check-config", str(config_with_secret))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_shipped_config_is_valid_as_is(amtool: str) -> None:
    # The secret is read when a notification is sent, so the file that ships validates
    # even where /run/secrets does not exist.
    result = amtool_run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=FraudScoringStale", "job=fraud_scoring"], "slack-critical"),
        (["severity=critical", "alertname=PushgatewayDown", "job=pushgateway"], "slack-critical"),
        (["severity=warning", "alertname=FraudDriftDetected", "job=fraud_drift"], "slack-warning"),
        (["severity=warning", "alertname=FraudTrainingGateFailed"], "slack-warning"),
        # Realised performance goes where the other model-quality alerts go.
        (["severity=warning", "alertname=FraudRealizedPerformanceBelowFloor",
          "job=fraud_realized_performance", "role=production", "component=model"],
         "slack-warning"),
        # Anything unlabelled still reaches a human.
        (["alertname=SomethingNew"], "slack-warning"),
    ],
)
def test_routes(amtool: str, config_with_secret: Path, labels: list[str], receiver: str) -> None:
    result = amtool_run(
        amtool, "config", "routes", "test", f"--config.file={config_with_secret}",
        f"--verify.receivers={receiver}", *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_critical_does_not_route_to_warning(amtool: str, config_with_secret: Path) -> None:
    result = amtool_run(
        amtool, "config", "routes", "test", f"--config.file={config_with_secret}",
        "--verify.receivers=slack-warning", "severity=critical", "alertname=FraudScoringStale",
    )
    assert result.returncode != 0


def test_webhook_comes_from_a_file_not_from_git() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    assert config["global"]["slack_api_url_file"] == "/run/secrets/slack_webhook_url"
    assert "slack_api_url" not in config["global"]
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack, receiver["name"]
    for path in [*MONITORING_DIR.rglob("*"), REPO_ROOT / "docker-compose.monitoring.yml"]:
        if path.is_file() and path.suffix in {".yml", ".yaml", ".json", ".md", ""}:
            assert not SLACK_HOOK.search(path.read_text(errors="replace")), path


def test_every_alert_severity_has_a_route() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routed = {}
    for route in config["route"]["routes"]:
        for matcher in route["matchers"]:
            name, value = (part.strip().strip('"') for part in matcher.split("="))
            if name == "severity":
                routed[value] = route["receiver"]
    assert routed == {"critical": "slack-critical", "warning": "slack-warning"}
    assert set(routed.values()) <= receivers
