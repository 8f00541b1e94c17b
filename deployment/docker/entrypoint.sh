#!/bin/sh
# Container entry point. Dagster reads the database password from DAGSTER_PG_PASSWORD
# (deployment/dagster.yaml) and the pipeline reads FRAUD_SLACK_WEBHOOK_URL, but compose
# hands secrets over as files under /run/secrets so they never appear in `docker inspect`
# or in the compose file. VAR_FILE=/path sets VAR from that file for the main process only;
# an empty file leaves VAR unset, so an optional secret can be switched off without editing
# docker-compose.yml.
set -eu

load_secret_file() {
    var="$1"
    file_var="${var}_FILE"
    eval "file=\${${file_var}:-}"
    if [ -n "${file}" ]; then
        if [ ! -r "${file}" ]; then
            echo "card-fraud-entrypoint: ${file_var}=${file} is not readable" >&2
            exit 1
        fi
        # Command substitution drops trailing newlines, which editors add to secret files.
        value="$(cat "${file}")"
        unset "${file_var}"
        if [ -n "${value}" ]; then
            export "${var}=${value}"
        fi
    fi
}

load_secret_file DAGSTER_PG_PASSWORD
load_secret_file FRAUD_SLACK_WEBHOOK_URL

exec "$@"
