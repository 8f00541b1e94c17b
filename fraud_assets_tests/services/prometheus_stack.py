"""Real Pushgateway, Prometheus and Alertmanager processes for tests.

The binaries come from the Debian packages ``prometheus``, ``prometheus-pushgateway`` and
``prometheus-alertmanager``. Every process listens on a free port of 127.0.0.1 only, keeps
its state in a temporary folder, and is terminated at teardown.

Plain helpers (``start_pushgateway``, ``start_prometheus``, ``start_alertmanager``,
``query``, ``wait_for``) work outside pytest; the fixtures at the bottom wrap them. To use
the fixtures from another test folder, import them into that folder's ``conftest.py``::

    from fraud_assets_tests.services.prometheus_stack import pushgateway, prometheus  # noqa: F401

Fixtures:

* ``pushgateway_service`` (session): one gateway for the session.
* ``pushgateway`` (function): the same gateway, wiped before the test.
* ``prometheus`` (session): Prometheus scraping ``pushgateway_service`` every second with
  ``honor_labels: true``, evaluating the repository's ``monitoring/rules`` every second.
  Yielded only once it has scraped the gateway at least once.
* ``alertmanager`` (session): Alertmanager running ``monitoring/alertmanager.yml``, with the
  Slack webhook file pointing at a local recording server (``alertmanager.slack``) and
  grouping waits shortened so a notification arrives within seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from fraud_assets_tests.services.http_recorder import RecordingServer

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING_DIR = REPO_ROOT / "monitoring"
RULES_DIR = MONITORING_DIR / "rules"
ALERTMANAGER_CONFIG = MONITORING_DIR / "alertmanager.yml"

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 20.0

T = TypeVar("T")


# ------------------------------------------------------------------------------ binaries


def find_binary(*names: str) -> str | None:
    """First of ``names`` found on PATH or in /usr/bin (Debian's install location)."""
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if found:
            return found
    return None


def pushgateway_binary() -> str | None:
    # Debian renames the upstream binaries with a prometheus- prefix.
    return find_binary("prometheus-pushgateway", "pushgateway")


def prometheus_binary() -> str | None:
    return find_binary("prometheus")


def alertmanager_binary() -> str | None:
    return find_binary("prometheus-alertmanager", "alertmanager")


def promtool_binary() -> str | None:
    return find_binary("promtool")


def amtool_binary() -> str | None:
    return find_binary("amtool")


MISSING_HINT = (
    "install the Debian packages: apt-get install -y --no-install-recommends "
    "prometheus prometheus-alertmanager prometheus-pushgateway"
)


def require_binary(binary: str | None, what: str) -> str:
    """The path, or skip the calling test with the reason and the install command."""
    if binary is None:
        pytest.skip(f"{what} not found; {MISSING_HINT}")
    return binary


# ------------------------------------------------------------------------------ processes


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the usual tiny race with the next bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _launch(name: str, argv: list[str], workdir: Path, port: int) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed binaries, arguments built here
            argv,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    service = Service(name=name, port=port, process=process, workdir=workdir, log_path=log_path)
    try:
        _wait_ready(service)
    except BaseException:
        service.stop()
        raise
    return service


def _wait_ready(service: Service, timeout: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    url = service.url + "/-/ready"
    while True:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with {service.process.returncode} before it was ready:\n"
                + service.log_tail()
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} not ready after {timeout} s:\n" + service.log_tail())
        time.sleep(0.05)


def start_pushgateway(workdir: Path, *, binary: str | None = None) -> Service:
    """A Pushgateway on a free loopback port, state in memory only."""
    binary = binary or pushgateway_binary()
    if binary is None:
        raise FileNotFoundError(f"Pushgateway binary not found; {MISSING_HINT}")
    port = free_port()
    argv = [
        binary,
        f"--web.listen-address={LOOPBACK}:{port}",
        # Debian's default persists to /var/lib/prometheus; tests must not share state.
        "--persistence.file=",
        # For PUT /api/v1/admin/wipe between tests.
        "--web.enable-admin-api",
        "--log.level=warn",
    ]
    return _launch("pushgateway", argv, workdir, port)


def wipe_pushgateway(service: Service, timeout: float = 10.0) -> None:
    """Delete every group, and wait until reads show it: the gateway answers 202 and applies
    the wipe asynchronously, so a read right after it could still see the old counters."""
    request = urllib.request.Request(service.url + "/api/v1/admin/wipe", method="PUT")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        response.read()
    deadline = time.monotonic() + timeout
    while pushgateway_groups(service):
        if time.monotonic() > deadline:
            raise AssertionError(f"the Pushgateway still holds groups {timeout} s after a wipe")
        time.sleep(0.02)


def pushgateway_groups(service: Service) -> list[dict[str, Any]]:
    """The ``data`` list of GET /api/v1/metrics: one entry per group."""
    with urllib.request.urlopen(service.url + "/api/v1/metrics", timeout=5) as response:  # noqa: S310
        return json.load(response)["data"]


def prometheus_config(
    *,
    pushgateway: str | None = None,
    extra_targets: Mapping[str, Iterable[str]] | None = None,
    rule_files: Iterable[str | Path] = (),
    alertmanager: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> dict[str, Any]:
    """A Prometheus config dict: the gateway scraped like in production (honor_labels)."""
    scrape_configs: list[dict[str, Any]] = []
    if pushgateway:
        scrape_configs.append(
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [pushgateway]}],
            }
        )
    for job, targets in (extra_targets or {}).items():
        scrape_configs.append({"job_name": job, "static_configs": [{"targets": list(targets)}]})
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": scrape_configs,
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def start_prometheus(
    workdir: Path, config: Mapping[str, Any] | str, *, binary: str | None = None
) -> Service:
    """Prometheus on a free loopback port with ``config`` (dict or YAML text)."""
    binary = binary or prometheus_binary()
    if binary is None:
        raise FileNotFoundError(f"Prometheus binary not found; {MISSING_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
    config_path.write_text(text)
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--log.level=warn",
    ]
    return _launch("prometheus", argv, workdir, port)


def start_alertmanager(workdir: Path, config_text: str, *, binary: str | None = None) -> Service:
    """Alertmanager on a free loopback port, clustering off."""
    binary = binary or alertmanager_binary()
    if binary is None:
        raise FileNotFoundError(f"Alertmanager binary not found; {MISSING_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(config_text)
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        # Without this Alertmanager opens its HA gossip port on every interface.
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return _launch("alertmanager", argv, workdir, port)


def alertmanager_test_config(slack_url_file: Path, *, source: Path = ALERTMANAGER_CONFIG) -> str:
    """The repository's Alertmanager config with the secret path and waits made test-sized.

    Only the webhook file and the grouping timers change; routes, receivers and templates
    are the ones that ship.
    """
    config = yaml.safe_load(source.read_text())
    config.setdefault("global", {})["slack_api_url_file"] = str(slack_url_file)

    def shorten(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "0s"), ("group_interval", "1s"), ("repeat_interval", "1m")):
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes") or []:
            shorten(child)

    shorten(config["route"])
    return yaml.safe_dump(config, sort_keys=False)


# ------------------------------------------------------------------------------ queries


def http_json(url: str, *, data: bytes | None = None, method: str | None = None,
              timeout: float = 5.0) -> Any:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = response.read()
    return json.loads(body) if body else None


def query(prometheus: Service, expr: str) -> list[dict[str, Any]]:
    """Instant query through /api/v1/query; raises on a PromQL error."""
    url = prometheus.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        payload = http_json(url)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"query {expr!r} failed: {exc.read().decode(errors='replace')}") from exc
    if payload.get("status") != "success":
        raise AssertionError(f"query {expr!r} failed: {payload}")
    return payload["data"]["result"]


def wait_for(probe: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.2,
             what: str = "condition") -> T:
    """Call ``probe`` until it returns something truthy; its last value, or AssertionError."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def wait_for_series(prometheus: Service, expr: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
    return wait_for(lambda: query(prometheus, expr), timeout=timeout, what=f"series {expr!r}")


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def pushgateway_service() -> Iterator[Service]:
    require_binary(pushgateway_binary(), "prometheus-pushgateway")
    with tempfile.TemporaryDirectory(prefix="pushgateway-") as tmp:
        with start_pushgateway(Path(tmp)) as service:
            yield service


@pytest.fixture
def pushgateway(pushgateway_service: Service) -> Service:
    wipe_pushgateway(pushgateway_service)
    return pushgateway_service


@pytest.fixture(scope="session")
def prometheus(pushgateway_service: Service) -> Iterator[Service]:
    require_binary(prometheus_binary(), "prometheus")
    rule_files = sorted(RULES_DIR.glob("*.yml"))
    config = prometheus_config(pushgateway=pushgateway_service.address, rule_files=rule_files)
    with tempfile.TemporaryDirectory(prefix="prometheus-") as tmp:
        with start_prometheus(Path(tmp), config) as service:
            # Target discovery reaches the scrape manager only after ~5 s; waiting for the
            # first scrape here keeps that delay out of every test's own timeout.
            wait_for_series(service, 'up{job="pushgateway"} == 1', timeout=20)
            yield service


@pytest.fixture(scope="session")
def alertmanager() -> Iterator[Service]:
    require_binary(alertmanager_binary(), "prometheus-alertmanager")
    with tempfile.TemporaryDirectory(prefix="alertmanager-") as tmp, RecordingServer() as slack:
        secret = Path(tmp) / "slack_webhook_url"
        secret.write_text(slack.url + "/services/T000/B000/XXXX\n")
        secret.chmod(0o600)
        config_text = alertmanager_test_config(secret)
        with start_alertmanager(Path(tmp) / "am", config_text) as service:
            service.extra["slack"] = slack
            yield service


DASHBOARD_DIR = MONITORING_DIR / "grafana" / "dashboards"
# Grafana fills these in; any valid value will do to prove the PromQL parses and runs.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$feature": ".+",
}


def dashboard_query_failures(prometheus: Service) -> tuple[int, list[str]]:
    """Run every panel query of every dashboard; return how many ran and what failed.

    A query that returns nothing counts as a failure, except a baseline that looks back in
    time (``offset``), which a fresh Prometheus cannot have.
    """
    failures, checked = [], 0
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
        for panel in panels:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, replacement in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, replacement)
                if "$" in expr:
                    failures.append(f"{path.name} / {panel['title']}: unhandled variable in {expr!r}")
                    continue
                checked += 1
                try:
                    result = query(prometheus, expr)
                except AssertionError as exc:
                    failures.append(f"{path.name} / {panel['title']}: {exc}")
                    continue
                if not result and "offset" not in expr:
                    failures.append(f"{path.name} / {panel['title']}: no data for {expr!r}")
    return checked, failures
