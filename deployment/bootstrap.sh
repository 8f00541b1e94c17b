#!/usr/bin/env bash
# Host setup for the card-fraud Dagster deployment on one EC2 instance (Ubuntu 22.04/24.04
# or Debian 12). Pass it as user data at launch, or run it as root on the host; run it again
# to deploy a new commit. Every step checks before it changes, so a second run on a
# configured host only fetches the code, syncs the venv, migrates and restarts.
#
# Settings (environment, or edit the defaults below when pasting as user data):
#   CARD_FRAUD_REPO_URL  git URL the host can fetch (public, or with a deploy key set up)
#   CARD_FRAUD_REF       branch, tag or commit to deploy
#   UV_VERSION           uv release installed from PyPI
#
# Output goes to /var/log/cloud-init-output.log when run as user data; that file is shipped
# to the /card-fraud/system log group by deployment/cloudwatch-config.json.
set -euo pipefail

CARD_FRAUD_REPO_URL="${CARD_FRAUD_REPO_URL:-https://github.com/your-org/card-fraud.git}"
CARD_FRAUD_REF="${CARD_FRAUD_REF:-main}"
UV_VERSION="${UV_VERSION:-0.13.9}"

readonly SERVICE_USER=cardfraud
readonly APP_DIR=/opt/card-fraud
readonly STATE_DIR=/var/lib/card-fraud
readonly DAGSTER_HOME_DIR="${STATE_DIR}/dagster_home"
readonly CONF_DIR=/etc/card-fraud
readonly ENV_FILE="${CONF_DIR}/env"
readonly LOG_DIR=/var/log/card-fraud
# uv lives in its own venv: Debian/Ubuntu mark the system Python as externally managed,
# so a bare `pip install` there is refused.
readonly TOOLS_DIR=/opt/card-fraud-tools
# uv-managed interpreters must sit outside /root and /home: the units run with
# ProtectHome=yes and as a user that cannot read /root.
readonly PYTHON_DIR=/opt/card-fraud-python
readonly UNITS=(card-fraud-code-server.service card-fraud-webserver.service card-fraud-daemon.service
    card-fraud-inference.service card-fraud-mlflow.service)

# Files created below must be readable by the service user unless made stricter explicitly.
umask 022
export DEBIAN_FRONTEND=noninteractive

log() {
    printf '[card-fraud bootstrap] %s\n' "$*"
}

die() {
    log "error: $*" >&2
    exit 1
}

# Last KEY=value in the env file, with one level of surrounding quotes removed.
env_value() {
    local key="$1" value
    value="$(sed -n "s/^${key}=//p" "${ENV_FILE}" | tail -n 1)"
    value="${value%\"}"
    value="${value#\"}"
    value="${value%\'}"
    value="${value#\'}"
    printf '%s' "${value}"
}

install_packages() {
    log "installing OS packages"
    apt-get update -q
    apt-get install -y -q --no-install-recommends \
        ca-certificates curl git logrotate openssl python3 python3-venv
}

ensure_service_user() {
    if id -u "${SERVICE_USER}" >/dev/null 2>&1; then
        return 0
    fi
    log "creating system user ${SERVICE_USER}"
    useradd --system --user-group --home-dir "${STATE_DIR}" --no-create-home \
        --shell /usr/sbin/nologin "${SERVICE_USER}"
}

ensure_directories() {
    install -d -m 0750 -o "${SERVICE_USER}" -g "${SERVICE_USER}" "${STATE_DIR}" "${DAGSTER_HOME_DIR}"
    # Written by systemd (as root) on the services' behalf, read by the CloudWatch agent:
    # the service user has no write access to its own logs.
    install -d -m 0750 -o root -g adm "${LOG_DIR}"
    install -d -m 0750 -o root -g root "${CONF_DIR}"
}

install_uv() {
    local installed=""
    if [[ -x "${TOOLS_DIR}/bin/uv" ]]; then
        installed="$("${TOOLS_DIR}/bin/uv" --version)"
    fi
    if [[ "${installed}" == "uv ${UV_VERSION}"* ]]; then
        return 0
    fi
    log "installing uv ${UV_VERSION} into ${TOOLS_DIR}"
    python3 -m venv "${TOOLS_DIR}"
    "${TOOLS_DIR}/bin/pip" install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
}

fetch_code() {
    log "fetching ${CARD_FRAUD_REF} from ${CARD_FRAUD_REPO_URL}"
    if [[ ! -d "${APP_DIR}/.git" ]]; then
        install -d -m 0755 "${APP_DIR}"
        git -C "${APP_DIR}" init --quiet
        git -C "${APP_DIR}" remote add origin "${CARD_FRAUD_REPO_URL}"
    else
        git -C "${APP_DIR}" remote set-url origin "${CARD_FRAUD_REPO_URL}"
    fi
    # Fetching the ref and checking out FETCH_HEAD works the same for a branch, a tag or a
    # commit, on a fresh directory and on an existing checkout (.venv is untracked, kept).
    git -C "${APP_DIR}" fetch --quiet --depth 1 origin "${CARD_FRAUD_REF}"
    git -C "${APP_DIR}" checkout --quiet --force FETCH_HEAD
}

sync_environment() {
    log "installing the locked environment (uv sync --locked --no-dev)"
    (
        cd "${APP_DIR}"
        UV_PYTHON_INSTALL_DIR="${PYTHON_DIR}" \
            UV_CACHE_DIR=/var/cache/card-fraud-uv \
            UV_COMPILE_BYTECODE=1 \
            UV_LINK_MODE=copy \
            "${TOOLS_DIR}/bin/uv" sync --locked --no-dev --python 3.11
    )
}

imds_region() {
    local token
    token="$(curl -fsS --max-time 2 -X PUT http://169.254.169.254/latest/api/token \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')" || return 1
    curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: ${token}" \
        http://169.254.169.254/latest/meta-data/placement/region
}

install_env_file() {
    if [[ ! -f "${ENV_FILE}" ]]; then
        log "creating ${ENV_FILE} from deployment/card-fraud.env.example"
        local password region tmp
        password="$(openssl rand -hex 24)"
        # Off EC2 (or with IMDS disabled) the example's region stays; that is not an error.
        # shellcheck disable=SC2310
        region="$(imds_region || true)"
        tmp="$(mktemp "${CONF_DIR}/env.XXXXXX")"
        chmod 0600 "${tmp}"
        sed -e "s/^DAGSTER_PG_PASSWORD=__GENERATED_BY_BOOTSTRAP__\$/DAGSTER_PG_PASSWORD=${password}/" \
            "${APP_DIR}/deployment/card-fraud.env.example" >"${tmp}"
        if [[ -n "${region}" ]]; then
            sed -i -e "s/^AWS_REGION=.*/AWS_REGION=${region}/" "${tmp}"
        fi
        mv "${tmp}" "${ENV_FILE}"
    fi
    chown root:root "${ENV_FILE}"
    chmod 0600 "${ENV_FILE}"
    if grep -q '__GENERATED_BY_BOOTSTRAP__' "${ENV_FILE}"; then
        die "${ENV_FILE} still holds the password placeholder; set DAGSTER_PG_PASSWORD"
    fi
}

setup_local_postgres() {
    local host user db password
    host="$(env_value DAGSTER_PG_HOST)"
    case "${host}" in
        127.0.0.1 | localhost | ::1) ;;
        *)
            log "DAGSTER_PG_HOST=${host} is not local: leaving PostgreSQL setup to its owner"
            return 0
            ;;
    esac
    log "installing local PostgreSQL"
    apt-get install -y -q --no-install-recommends postgresql
    systemctl enable --now postgresql

    user="$(env_value DAGSTER_PG_USERNAME)"
    db="$(env_value DAGSTER_PG_DB)"
    mlflow_db="$(env_value MLFLOW_PG_DB)"
    password="$(env_value DAGSTER_PG_PASSWORD)"
    [[ -n "${user}" && -n "${db}" && -n "${mlflow_db}" && -n "${password}" ]] ||
        die "DAGSTER_PG_USERNAME, DAGSTER_PG_DB, MLFLOW_PG_DB and DAGSTER_PG_PASSWORD must be set in ${ENV_FILE}"

    # psql variables quote the names and the password, so no value is pasted into SQL text;
    # \gexec runs the CREATE only when the SELECT finds it missing. The password goes in on
    # psql's standard input: a command line can be read by any local user in /proc.
    log "ensuring role ${user} and databases ${db}, ${mlflow_db}"
    (
        cd /
        {
            psql_set_literal role_password "${password}"
            cat <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role_name')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role_name') \gexec
ALTER ROLE :"role_name" WITH LOGIN PASSWORD :'role_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db_name', :'role_name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db_name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'mlflow_db_name', :'role_name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db_name') \gexec
SQL
        } | runuser -u postgres -- psql --quiet --no-psqlrc -v ON_ERROR_STOP=1 \
            -v role_name="${user}" -v db_name="${db}" -v mlflow_db_name="${mlflow_db}"
    )
}

# A psql "\set NAME 'VALUE'" line for any one-line value: inside single quotes psql reads a
# backslash as an escape and '' as a quote, so both are doubled.
psql_set_literal() {
    local value
    # Through sed's standard input (printf is a builtin): the value never becomes an argument.
    value="$(printf '%s' "$2" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"
    printf '%s\n' "\\set $1 '${value}'"
}

install_configuration() {
    log "installing Dagster instance config, systemd units and logrotate rules"
    install -m 0644 -o root -g root "${APP_DIR}/deployment/dagster.yaml" "${DAGSTER_HOME_DIR}/dagster.yaml"
    local unit
    for unit in "${UNITS[@]}"; do
        install -m 0644 -o root -g root "${APP_DIR}/deployment/systemd/${unit}" "/etc/systemd/system/${unit}"
    done
    install -m 0644 -o root -g root "${APP_DIR}/deployment/logrotate/card-fraud" /etc/logrotate.d/card-fraud
    systemctl daemon-reload
}

migrate_instance() {
    # Same user, environment file and DAGSTER_HOME as the services, so a new Dagster
    # release upgrades the PostgreSQL schema before the daemon touches it.
    log "migrating the Dagster instance schema"
    systemd-run --quiet --wait --pipe --collect \
        --property=User="${SERVICE_USER}" \
        --property=EnvironmentFile="${ENV_FILE}" \
        --setenv=DAGSTER_HOME="${DAGSTER_HOME_DIR}" \
        --working-directory="${STATE_DIR}" \
        "${APP_DIR}/.venv/bin/dagster" instance migrate
}

configure_cloudwatch_agent() {
    local ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
    if [[ ! -x "${ctl}" ]]; then
        log "CloudWatch agent not installed: skipping its configuration (docs/deployment.md)"
        return 0
    fi
    log "loading deployment/cloudwatch-config.json into the CloudWatch agent"
    "${ctl}" -a fetch-config -m ec2 -s -c "file:${APP_DIR}/deployment/cloudwatch-config.json"
}

start_services() {
    local unit running=()
    for unit in "${UNITS[@]}"; do
        if systemctl is-active --quiet "${unit}"; then
            running+=("${unit}")
        fi
    done
    systemctl enable --now "${UNITS[@]}"
    # enable --now leaves running services alone; a redeploy must restart them to load the
    # new code and venv.
    if ((${#running[@]} > 0)); then
        log "restarting ${running[*]}"
        systemctl restart "${running[@]}"
    fi
}

main() {
    [[ "${EUID}" -eq 0 ]] || die "run as root (EC2 user data already is)"
    install_packages
    ensure_service_user
    ensure_directories
    install_uv
    fetch_code
    sync_environment
    install_env_file
    setup_local_postgres
    install_configuration
    migrate_instance
    configure_cloudwatch_agent
    start_services
    local revision
    revision="$(git -C "${APP_DIR}" rev-parse --short HEAD)"
    log "done: ${revision} is running; UI on 127.0.0.1:3100"
}

main "$@"
