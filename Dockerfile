#
# One image for the whole Dagster deployment: the code server (default command), the
# webserver and the daemon (docker-compose.yml overrides the command). Nothing secret is
# baked in: credentials arrive at run time through the environment, Docker secrets or the
# EC2 instance role.

# Any Debian bookworm image with Python 3.11 and its venv module. Where Docker Hub is not
# reachable, deployment/docker/build-base-image.sh makes one with debootstrap and prints its
# name for --build-arg PYTHON_IMAGE=... (docs/deployment.md, phase 3.2). There is no
# `# syntax=` line on purpose: BuildKit would pull that frontend image from Docker Hub.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------
# Builder: resolve nothing, install exactly what uv.lock says.
FROM ${PYTHON_IMAGE} AS builder

# uv itself comes from PyPI, pinned, so the build needs no installer script from the web.
# It goes into a venv of its own because Debian's Python has no system pip (and refuses
# system-wide installs); that venv stays in this stage.
ARG UV_VERSION=0.13.9
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
ENV PATH=/opt/uv/bin:${PATH}

# The venv is created at the path it will have in the runtime stage: its scripts carry
# absolute shebangs. Bytecode is compiled here because the runtime tree is read-only to the
# service user.
ENV UV_PROJECT_ENVIRONMENT=/opt/card-fraud/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1

WORKDIR /opt/card-fraud

# Dependencies first, in their own layer: a code-only change reuses it.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project

# Then the project itself, installed as a wheel so the runtime needs no source tree.
COPY README.md ./
COPY fraud_assets ./fraud_assets
RUN uv sync --locked --no-dev --no-editable

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# A fixed numeric identity (also in USER below): runAsNonRoot-style checks and bind-mounted
# volumes need the UID without reading /etc/passwd.
# The official python image keeps pip in its system Python: an installer has no use in a
# service container, so it goes (Debian-built bases have none).
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel; \
    fi \
    && groupadd --system --gid 10001 cardfraud \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /var/lib/card-fraud --shell /usr/sbin/nologin cardfraud \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/card-fraud /var/lib/card-fraud/dagster_home \
        /var/lib/card-fraud/ecs /var/lib/card-fraud/docker /var/lib/card-fraud/dask-worker

COPY --from=builder /opt/card-fraud/.venv /opt/card-fraud/.venv
COPY deployment/dagster.yaml /var/lib/card-fraud/dagster_home/dagster.yaml
COPY deployment/workspace.compose.yaml /opt/card-fraud/deployment/workspace.compose.yaml
# Instances that start every run in a container of its own: with Docker
# (deployment/compose.docker-launcher.yml) and on ECS (deployment/ecs/, whose code server is
# on the task's own loopback, hence the host workspace file).
COPY deployment/docker/dagster.yaml /var/lib/card-fraud/docker/dagster.yaml
COPY deployment/ecs/dagster.yaml /var/lib/card-fraud/ecs/dagster.yaml
COPY deployment/workspace.yaml /opt/card-fraud/deployment/workspace.yaml
COPY --chmod=0755 deployment/docker/entrypoint.sh /usr/local/bin/card-fraud-entrypoint

ENV PATH=/opt/card-fraud/.venv/bin:${PATH} \
    DAGSTER_HOME=/var/lib/card-fraud/dagster_home \
    FRAUD_ENV=production \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_WAIT_POLICY=PASSIVE

WORKDIR /var/lib/card-fraud
USER 10001:10001

EXPOSE 4000

# Matches the default command; docker-compose.yml gives the webserver and the daemon
# their own checks.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-h", "127.0.0.1", "-p", "4000"]

ENTRYPOINT ["card-fraud-entrypoint"]
# 0.0.0.0 inside the container so the webserver and daemon containers can reach it on the
# compose network; docker-compose.yml publishes no port for it.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "fraud_assets.definitions", "--location-name", "fraud_assets"]
