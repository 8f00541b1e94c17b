"""Offline checks of monitoring/prometheus.yml and the rule files, with Debian's promtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from fraud_assets.core.monitoring.telemetry import families
from fraud_assets.core.monitoring.telemetry import names as metric_names
from fraud_assets.core.monitoring.telemetry.realized import (
    RealizedPerformance,
    build_realized_registry,
)
from fraud_assets_tests.services.prometheus_stack import (
    MONITORING_DIR,
    RULES_DIR,
    promtool_binary,
    require_binary,
)

PROMETHEUS_YML = MONITORING_DIR / "prometheus.yml"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TEST_FILES = sorted((MONITORING_DIR / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary(promtool_binary(), "promtool")


def run(argv: list[str], *, cwd: Path | None = None, stdin: bytes | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - fixed tool, arguments built here
        argv, cwd=cwd, input=stdin.decode() if stdin is not None else None,
        capture_output=True, text=True, timeout=timeout,
    )
    return result


def load_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append({**rule, "_group": group["name"]})
    return rules


def referenced_metric_names(expr: str) -> set[str]:
    """fraud_* metric names an expression reads, ignoring strings and recorded names."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values such as job="fraud_scoring"
    expr = re.sub(r"\b[a-zA-Z_]\w*:[\w:]+", " ", expr)  # level:metric:operation names
    return set(re.findall(r"\bfraud_\w+", expr))


def test_prometheus_config_is_valid(promtool: str) -> None:
    # promtool resolves rule_files relative to the config file, as Prometheus does in the
    # container, so this also proves that rules/*.yml is found and valid.
    result = run([promtool, "check", "config", str(PROMETHEUS_YML)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule files found" in result.stdout + result.stderr


def test_prometheus_config_scrapes_the_stack() -> None:
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"prometheus", "pushgateway", "node", "alertmanager"} <= set(jobs)
    # Without honor_labels every pushed series would be relabelled job="pushgateway".
    assert jobs["pushgateway"].get("honor_labels") is True
    for name, job in jobs.items():
        if name != "pushgateway":
            assert not job.get("honor_labels"), f"{name} must not override target labels"
    assert config["rule_files"] == ["rules/*.yml"]
    am_targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am_targets == ["alertmanager:9093"]


def test_rule_files_are_valid(promtool: str) -> None:
    assert RULE_FILES, "no rule files under monitoring/rules"
    result = run([promtool, "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert RULE_TEST_FILES, "no promtool test files under monitoring/tests"
    result = run([promtool, "test", "rules", *map(str, RULE_TEST_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = {r["alert"] for r in load_rules() if "alert" in r}
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts - firing == set(), "alerts without a firing test"
    assert alerts - quiet == set(), "alerts without a not-firing test"


def test_rule_test_files_keep_series_intervals_short() -> None:
    # A longer interval leaves gaps beyond the 5m lookback and no `for:` ever completes.
    for path in RULE_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            interval = case.get("interval", "1m")
            value, unit = int(interval[:-1]), interval[-1]
            seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
            assert seconds <= 300, f"{path.name}: {case['name']} uses interval {interval}"


def test_alerts_carry_routing_labels_and_text() -> None:
    for rule in load_rules():
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["labels"].get("component"), name
        assert rule["annotations"].get("summary"), name
        assert rule["annotations"].get("description"), name


def _service_metric_names() -> set[str]:
    """Every sample name the scoring service's /metrics exposes."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from fraud_assets.service.metrics import ServiceMetrics

    serving = SimpleNamespace(version="v", loaded_at=datetime.now(UTC), model=SimpleNamespace(threshold=0.5))
    registry = ServiceMetrics(SimpleNamespace(current=serving, reload_failures=0)).registry
    return {sample.name for family in registry.collect() for sample in family.samples}


def test_rules_read_only_metrics_the_jobs_push() -> None:
    recorded = {r["record"] for r in load_rules() if "record" in r}
    known = metric_names.ALL_METRIC_NAMES | _service_metric_names()
    for rule in load_rules():
        names = referenced_metric_names(rule["expr"])
        unknown = names - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads unknown {unknown}"
    for rule in load_rules():
        for used in re.findall(r"\b[a-z_]+:[\w:]+", rule["expr"]):
            assert used in recorded, f"{used} is not recorded by any rule"


def test_run_totals_read_the_previous_evaluation_before_recording_this_one() -> None:
    # Rules of a group run in order at one timestamp: a rule placed after the copy would
    # compare the timestamp with itself and never see a new run.
    (group,) = [g for g in yaml.safe_load((RULES_DIR / "fraud_run_totals.yml").read_text())["groups"]
                if g["name"] == "fraud_run_totals"]
    records = [rule["record"] for rule in group["rules"]]
    copies = [r for r in records if r.endswith(":previous_evaluation")]
    assert copies and records[-len(copies):] == copies
    readers = [rule["record"] for rule in group["rules"] if ":previous_evaluation" in rule["expr"]]
    assert readers == ["job:fraud_scoring_runs:first_seen"]
    assert "interval" not in group, "an own interval would leave this group behind the scrapes"


def test_recording_rule_names_follow_convention() -> None:
    for rule in load_rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


@pytest.mark.parametrize(
    "registry",
    [
        pytest.param(
            lambda: families.build_scoring_registry(
                rows=1000, flagged=7, seconds=12.5, model_version="20250101-abc"
            ),
            id="scoring",
        ),
        pytest.param(
            lambda: families.build_training_registry(
                auprc=0.81, roc_auc=0.97, threshold=0.42, seconds=300.0,
                model_version="20250108-def", gate_passed=True,
                production_version="20250101-abc",
            ),
            id="training",
        ),
        pytest.param(
            lambda: families.build_drift_registry(
                psi={f"V{i}": 0.01 * i for i in range(1, 29)} | {"Amount": 0.2, "score": 0.3},
                wasserstein={f"V{i}": 0.001 * i for i in range(1, 29)} | {"Amount": 0.05},
                drift_share=0.1, drift_detected=False, seconds=4.0,
            ),
            id="drift",
        ),
        pytest.param(
            lambda: build_realized_registry(RealizedPerformance(
                role="challenger", model_version="20250108-def", day="2025-01-02", mature=False,
                rows=250_000, frauds=410, alerts=600, auprc=0.74, precision=float("nan"),
                recall=0.71, cost=1830.5, known_fraud_share=0.8,
            )),
            id="realized",
        ),
        *[
            pytest.param(lambda job=job: families.build_failure_registry(job), id=f"failure-{job}")
            for job in metric_names.JOBS
        ],
    ],
)
def test_pushed_exposition_passes_promtool_lint(promtool: str, registry) -> None:
    text = generate_latest(registry())
    result = run([promtool, "check", "metrics"], stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr + text.decode()
    # Nothing else in the exposition: no process/python collectors, no _created series.
    names = set(re.findall(r"^# TYPE (\S+)", text.decode(), flags=re.M))
    assert names <= metric_names.ALL_METRIC_NAMES
    assert "_created" not in text.decode()
