"""A Docker engine and the project's images for the tests marked `docker`.

`scripts/test` installs Debian's docker.io and starts dockerd; when the engine is still not
up (a machine without the package, or not root), the fixtures try once more to start it
and otherwise skip with the reason. Images are built locally because no registry is
reachable on these machines: the Python base by deployment/docker/build-base-image.sh
(tagged by a content hash, so built once and reused by every later session), the
application and PostgreSQL images by BuildKit, whose layer cache makes a rebuild of
unchanged sources take seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import DEPLOYMENT, REPO

# Debian's 20.10 client does BuildKit builds with the engine's built-in BuildKit; a newer
# client earlier on the PATH wants the buildx plugin, which these machines lack.
DEBIAN_CLIENT = Path("/usr/bin/docker")
ENGINE_START_TIMEOUT_S = 60
BUILD_TIMEOUT_S = 900


def docker_client() -> str:
    if DEBIAN_CLIENT.exists():
        return str(DEBIAN_CLIENT)
    found = shutil.which("docker")
    if found is None:
        pytest.skip("no docker client: install docker.io (scripts/test does as root)")
    return found


def docker(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_BUILDKIT": "1", **kwargs.pop("env", {})}
    result = subprocess.run(
        [docker_client(), *args], capture_output=True, text=True, timeout=timeout, env=env,
        check=False, **kwargs,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _engine_up() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_engine() -> None:
    if _engine_up():
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists():
        pytest.skip("no Docker engine: dockerd is not installed (scripts/test installs docker.io as root)")
    if os.geteuid() != 0:
        pytest.skip("no Docker engine running, and only root can start dockerd here")
    log = open("/var/log/dockerd.log", "ab")  # noqa: SIM115 - dockerd keeps it
    subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _engine_up():
            return
        time.sleep(1)
    pytest.skip(f"dockerd did not answer within {ENGINE_START_TIMEOUT_S} s (see /var/log/dockerd.log)")


@dataclass(frozen=True)
class Images:
    base: str
    app: str
    postgres: str


def base_image() -> str:
    """The Debian base every local image builds on: CARD_FRAUD_BASE_IMAGE overrides the
    locally made one (e.g. python:3.11-slim-bookworm where Docker Hub is reachable)."""
    ensure_engine()
    base = os.environ.get("CARD_FRAUD_BASE_IMAGE")
    if base:
        return base
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("the base image needs debootstrap as root (scripts/test installs it)")
    env = {**os.environ, "PATH": f"{DEBIAN_CLIENT.parent}:{os.environ.get('PATH', '')}"}
    made = subprocess.run(
        ["sh", str(DEPLOYMENT / "docker" / "build-base-image.sh")],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env, check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr[-4000:]
    return made.stdout.strip().splitlines()[-1]


def build_images() -> Images:
    """The images the compose file names, built here."""
    base = base_image()
    app = "card-fraud:test"
    postgres = "card-fraud-postgres:test"
    # --network host: pip and uv reach the package index (and apt its mirror) the way the
    # host does, through its CA bundle, which the base image carries.
    docker("build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}", "-t", app,
           str(REPO), timeout=BUILD_TIMEOUT_S)
    docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", postgres,
           str(DEPLOYMENT / "docker" / "postgres"), timeout=BUILD_TIMEOUT_S)
    return Images(base=base, app=app, postgres=postgres)


MONITORING_TARGETS = ("prometheus", "pushgateway", "alertmanager", "node-exporter")


def build_monitoring_images() -> dict[str, str]:
    """Target of deployment/docker/monitoring/Dockerfile -> local image name, one per program
    of docker-compose.monitoring.yml that Debian packages (all but Grafana)."""
    base = base_image()
    images = {}
    for target in MONITORING_TARGETS:
        images[target] = f"card-fraud-{target}:test"
        docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}",
               "--target", target, "-t", images[target],
               str(DEPLOYMENT / "docker" / "monitoring"), timeout=BUILD_TIMEOUT_S)
    return images


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.skip("docker-compose is not installed (scripts/test installs Debian's as root)")
    return found


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: reachable from every container, not
    from outside the machine. The engine leaves IPAM's Gateway empty when it picked the
    address itself, so it is read from the bridge interface then."""
    gateway = docker(
        "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}"
    ).stdout.strip()
    if gateway:
        return gateway
    interface = docker(
        "network", "inspect", "bridge", "--format",
        '{{index .Options "com.docker.network.bridge.name"}}',
    ).stdout.strip()
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show", interface or "docker0"],
                           capture_output=True, text=True, check=True).stdout
    return shown.split(" inet ", 1)[1].split("/", 1)[0]
