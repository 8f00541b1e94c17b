"""systemd units in deployment/systemd/.

`systemd-analyze verify` only warns on a bad value and still exits 0, so any output at all
fails the test. It also refuses an ExecStart binary that does not exist, and this machine
has no /opt/card-fraud: the units are copied to a temporary directory with
/opt/card-fraud/.venv/bin replaced by this test's own virtualenv bin directory, which holds
the same dagster, dagster-webserver, dagster-daemon and fraud entry points. Nothing else is
changed: User=cardfraud is kept (verify does not resolve users), and the unit names stay
the same so the Wants=/After= references between the units resolve.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from .conftest import DEPLOYMENT, VENV_BIN, run, system_tool

UNIT_DIR = DEPLOYMENT / "systemd"
UNITS = {
    "card-fraud-code-server.service": [
        "/opt/card-fraud/.venv/bin/dagster", "code-server", "start",
        "-h", "127.0.0.1", "-p", "4000", "-m", "fraud_assets.definitions",
    ],
    "card-fraud-webserver.service": [
        "/opt/card-fraud/.venv/bin/dagster-webserver",
        "-h", "127.0.0.1", "-p", "3100", "-w", "/opt/card-fraud/deployment/workspace.yaml",
    ],
    "card-fraud-daemon.service": [
        "/opt/card-fraud/.venv/bin/dagster-daemon", "run",
        "-w", "/opt/card-fraud/deployment/workspace.yaml",
    ],
    "card-fraud-mlflow.service": [
        "/opt/card-fraud/.venv/bin/mlflow", "server", "--host", "127.0.0.1", "--port", "5000",
    ],
    "card-fraud-inference.service": [
        "/opt/card-fraud/.venv/bin/fraud", "serve", "--host", "127.0.0.1", "--port", "8000",
    ],
    "card-fraud-dask-scheduler.service": [
        "/opt/card-fraud/.venv/bin/dask", "scheduler", "--host", "127.0.0.1", "--port", "8786",
        "--dashboard-address", "127.0.0.1:8787",
    ],
    "card-fraud-dask-worker.service": [
        "/opt/card-fraud/.venv/bin/dask", "worker", "tcp://127.0.0.1:8786", "--host", "127.0.0.1",  # by default
    ],
}  # fmt: skip
DASK_UNITS = {"card-fraud-dask-scheduler.service", "card-fraud-dask-worker.service"}

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ReadWritePaths": "/var/lib/card-fraud",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "User": "cardfraud",
    # The settings, then the optional override `fraud s3 failover` writes in a recovery region.
    "EnvironmentFile": ["/etc/card-fraud/env", "-/etc/card-fraud/failover.env"],
}


def _settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_exactly_these_units_ship() -> None:
    assert {p.name for p in UNIT_DIR.glob("*.service")} == set(UNITS)


def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    analyze = system_tool("systemd-analyze")
    for name in UNITS:
        text = (UNIT_DIR / name).read_text()
        assert "/opt/card-fraud/.venv/bin/" in text
        (tmp_path / name).write_text(text.replace("/opt/card-fraud/.venv/bin", str(VENV_BIN)))
    result = run([analyze, "verify", *sorted(UNITS)], cwd=tmp_path)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and output == "", output


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_is_hardened(name: str) -> None:
    settings = _settings(UNIT_DIR / name)
    for key, expected in HARDENING.items():
        expected = expected if isinstance(expected, list) else [expected]
        assert settings.get(key) == expected, (key, settings.get(key))
    # The only writable path, and no way to widen it.
    for widening in ("ReadWriteDirectories", "StateDirectory", "LogsDirectory", "BindPaths"):
        assert widening not in settings, widening
    if name not in DASK_UNITS:
        assert settings["Environment"][0].startswith("DAGSTER_HOME=/var/lib/card-fraud/dagster_home")


def _expanded(arg: str, environment: list[str]) -> str:
    """``${NAME}`` as systemd expands it when no environment file sets NAME: the unit's own
    Environment= default."""
    defaults = dict(pair.split("=", 1) for line in environment for pair in shlex.split(line))
    if arg.startswith("${") and arg.endswith("}"):
        return defaults[arg[2:-1]]
    return arg


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_command_and_loopback_binding(name: str) -> None:
    settings = _settings(UNIT_DIR / name)
    (exec_start,) = settings["ExecStart"]
    argv = [_expanded(arg, settings.get("Environment", [])) for arg in shlex.split(exec_start)]
    expected = UNITS[name]
    assert argv[: len(expected)] == expected
    for flag in ("-h", "--host"):
        if flag in argv:
            assert argv[argv.index(flag) + 1] == "127.0.0.1"
    if name in DASK_UNITS:
        # No Dask dashboard on a public address: loopback, or none at all.
        assert "--no-dashboard" in argv or argv[argv.index("--dashboard-address") + 1].startswith("127.0.0.1:")
    for arg in argv:
        if arg.startswith("/opt/card-fraud/") and ".venv" not in arg:
            repo_path = DEPLOYMENT.parent / arg.removeprefix("/opt/card-fraud/")
            assert repo_path.exists(), arg


def test_a_worker_host_sets_its_scheduler_and_address_in_the_environment_file() -> None:
    """The worker unit reads both from /etc/card-fraud/env, which the template documents; the
    Dagster services read the same FRAUD_DASK_SCHEDULER, so host and workers cannot disagree."""
    (exec_start,) = _settings(UNIT_DIR / "card-fraud-dask-worker.service")["ExecStart"]
    assert "${FRAUD_DASK_SCHEDULER} --host ${FRAUD_DASK_WORKER_HOST}" in exec_start
    template = (DEPLOYMENT / "card-fraud.env.example").read_text()
    assert "# FRAUD_DASK_SCHEDULER=tcp://127.0.0.1:8786" in template and "# FRAUD_DASK_WORKER_HOST=10.0.1.23" in template
