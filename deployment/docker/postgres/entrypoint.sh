#!/bin/sh
# First start: initdb with the password from POSTGRES_PASSWORD_FILE, then create
# POSTGRES_DB owned by POSTGRES_USER and run /docker-entrypoint-initdb.d/*.sql. Every start:
# run postgres as the postgres user, listening on the container's network (the compose network only: no port is published).
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=${POSTGRES_USER}}"
as_postgres="setpriv --reuid=postgres --regid=postgres --init-groups --"

uid="$(id -u)"
if [ "${uid}" = 0 ]; then
    install -d -o postgres -g postgres -m 0700 "${PGDATA}"
    chown postgres:postgres "${PGDATA}"
else
    as_postgres=""
fi

if [ ! -s "${PGDATA}/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD_FILE:-}" ] || [ ! -r "${POSTGRES_PASSWORD_FILE}" ]; then
        echo "postgres-entrypoint: POSTGRES_PASSWORD_FILE must name a readable file" >&2
        exit 1
    fi
    # initdb reads the password as the postgres user, which may not read the secret file.
    pwfile="$(mktemp)"
    head -n1 "${POSTGRES_PASSWORD_FILE}" | tr -d '\n' > "${pwfile}"
    [ -n "${as_postgres}" ] && chown postgres "${pwfile}"
    ${as_postgres} initdb -D "${PGDATA}" --username="${POSTGRES_USER}" --pwfile="${pwfile}" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "${pwfile}"
    # Password authentication for every address: only the compose network can reach it.
    echo "host all all all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
    if [ "${POSTGRES_DB}" != "postgres" ]; then
        ${as_postgres} postgres -D "${PGDATA}" -c listen_addresses='' \
            -c unix_socket_directories=/tmp &
        pid=$!
        until ${as_postgres} pg_isready -q -h /tmp; do sleep 0.2; done
        ${as_postgres} createdb -h /tmp -U "${POSTGRES_USER}" -O "${POSTGRES_USER}" "${POSTGRES_DB}"
        # As the upstream image does: SQL files mounted here run once, on a new volume.
        for script in /docker-entrypoint-initdb.d/*.sql; do
            [ -e "${script}" ] || continue
            ${as_postgres} psql -q -v ON_ERROR_STOP=1 -h /tmp -U "${POSTGRES_USER}" \
                -d "${POSTGRES_DB}" -f "${script}"
        done
        kill -INT "${pid}"
        wait "${pid}"
    fi
fi

exec ${as_postgres} postgres -D "${PGDATA}" -c listen_addresses='*' \
    -c unix_socket_directories=/var/run/postgresql "$@"
