"""deployment/bootstrap.sh (EC2 user data) and the container entry point.

The bootstrap script needs root, apt, systemd as PID 1 and the network, so it is not run
here. It is linted with every optional ShellCheck check, its references to repository
files are resolved, its environment file template is compared with what dagster.yaml and
the units need, and its SQL is run twice against a real PostgreSQL when one is available.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

import pytest
import yaml

from .conftest import DEPLOYMENT, REPO, run, system_tool, venv_tool

BOOTSTRAP = DEPLOYMENT / "bootstrap.sh"
SCRIPTS = [
    BOOTSTRAP,
    DEPLOYMENT / "docker" / "entrypoint.sh",
    DEPLOYMENT / "docker" / "build-base-image.sh",
    DEPLOYMENT / "docker" / "postgres" / "entrypoint.sh",
]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_is_silent(path) -> None:
    result = run([venv_tool("shellcheck"), "--enable=all", str(path)])
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_bootstrap_is_strict_and_uses_the_lock_file() -> None:
    text = BOOTSTRAP.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert "sync --locked --no-dev" in text
    assert re.search(r'pip" install .*"uv==\$\{UV_VERSION\}"', text), "uv comes from pip, pinned"
    assert "systemctl daemon-reload" in text
    assert 'systemctl enable --now "${UNITS[@]}"' in text
    assert "curl -LsSf" not in text and "| sh" not in text, "no installer piped from the web"


def test_bootstrap_installs_every_unit_and_only_existing_files() -> None:
    text = BOOTSTRAP.read_text()
    (units,) = re.findall(r"readonly UNITS=\(([^)]*)\)", text)
    every_unit = {p.name for p in (DEPLOYMENT / "systemd").glob("*.service")}
    # The Dask cluster is optional (FRAUD_DASK_SCHEDULER): its units are installed by hand,
    # as the deployment guide says, and bootstrap leaves them alone.
    cluster_units = {"card-fraud-dask-scheduler.service", "card-fraud-dask-worker.service"}
    assert set(units.split()) == every_unit - cluster_units
    assert cluster_units <= every_unit
    assert "card-fraud-dask-*.service" in (REPO / "docs" / "deployment.md").read_text()
    referenced = set(re.findall(r"\$\{APP_DIR\}/(deployment/[A-Za-z0-9_./-]+)", text))
    assert referenced, "expected references into the repository"
    for rel in referenced:
        assert (REPO / rel).exists(), rel


def _env_refs(node) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def test_host_env_template_sets_everything_dagster_yaml_reads() -> None:
    needed = _env_refs(yaml.safe_load((DEPLOYMENT / "dagster.yaml").read_text()))
    assert "DAGSTER_PG_PASSWORD" in needed
    template = (DEPLOYMENT / "card-fraud.env.example").read_text()
    keys = {ln.split("=", 1)[0] for ln in template.splitlines() if ln and not ln.startswith("#")}
    assert needed <= keys, needed - keys
    # The placeholder the bootstrap replaces, and nothing else secret in the template.
    assert "DAGSTER_PG_PASSWORD=__GENERATED_BY_BOOTSTRAP__" in template
    assert "__GENERATED_BY_BOOTSTRAP__" in BOOTSTRAP.read_text()


def test_compose_provides_everything_dagster_yaml_reads() -> None:
    needed = _env_refs(yaml.safe_load((DEPLOYMENT / "dagster.yaml").read_text()))
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = compose["services"]["daemon"]["environment"]
    provided = set(env) | {k.removesuffix("_FILE") for k in env if k.endswith("_FILE")}
    example = (DEPLOYMENT / "compose.env.example").read_text()
    provided |= {ln.split("=", 1)[0] for ln in example.splitlines() if ln and ln[0] != "#"}
    assert needed <= provided, needed - provided


def test_bootstrap_keeps_the_database_password_off_command_lines() -> None:
    script = BOOTSTRAP.read_text()
    (psql_call,) = re.findall(r"\| runuser -u postgres -- psql[^\n]*\\\n[^\n]*", script)
    assert "password" not in psql_call
    assert "psql_set_literal role_password" in script


def _bootstrap_sql() -> str:
    (sql,) = re.findall(r"<<'SQL'\n(.*?)\nSQL\n", BOOTSTRAP.read_text(), flags=re.DOTALL)
    return sql


def _bootstrap_stdin(password: str) -> str:
    """What bootstrap.sh feeds psql: its \\set line for the password, then the SQL."""
    (function,) = re.findall(r"^psql_set_literal\(\) \{\n.*?^\}\n", BOOTSTRAP.read_text(), flags=re.DOTALL | re.M)
    line = run(["bash", "-c", f'{function}\npsql_set_literal role_password "$1"', "_", password])
    assert line.returncode == 0, line.stderr
    return line.stdout + _bootstrap_sql() + "\n"


def _scram_verifier_matches(verifier: str, password: str) -> bool:
    """Check a PostgreSQL SCRAM-SHA-256 verifier against a password (RFC 5802, 7677)."""
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (
        method == "SCRAM-SHA-256"
        and hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)
        and hmac.new(salted, b"Server Key", "sha256").digest() == base64.b64decode(server_key)
    )


@pytest.mark.integration
def test_bootstrap_sql_is_idempotent_against_postgres() -> None:
    psql = system_tool("psql")
    admin = [psql, "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "--no-psqlrc", "-q"]
    if run([*admin, "-c", "SELECT 1"], timeout=10).returncode != 0:
        pytest.skip("no PostgreSQL with trust auth on 127.0.0.1:5432")
    suffix = uuid.uuid4().hex[:8]
    role, db, mlflow_db = f"cf_boot_role_{suffix}", f"cf_boot_db_{suffix}", f"cf_boot_mlflow_{suffix}"
    # Quotes, backslashes and shell syntax: the password must arrive exactly, bound as a psql
    # variable rather than pasted into SQL or run by a shell.
    password = "p'w\\\"d;--\\'$(id)"
    try:
        for _ in range(2):
            result = run(
                [*admin, "-v", "ON_ERROR_STOP=1", "-v", f"role_name={role}", "-v", f"db_name={db}",
                 "-v", f"mlflow_db_name={mlflow_db}"],
                input=_bootstrap_stdin(password),
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
        query = (
            "SELECT r.rolcanlogin, pg_get_userbyid(d.datdba), r.rolpassword FROM pg_authid r, pg_database d "
            f"WHERE r.rolname = '{role}' AND d.datname = '{db}'"
        )
        check = run([*admin, "-At", "-c", query])
        can_login, owner, verifier = check.stdout.strip().split("|")
        assert (can_login, owner) == ("t", role), check.stdout + check.stderr
        assert _scram_verifier_matches(verifier, password)
        assert not _scram_verifier_matches(verifier, password + "x")
        owners = run([*admin, "-At", "-c", f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{mlflow_db}'"])
        assert owners.stdout.strip() == role, owners.stdout + owners.stderr  # the tracking server's own
    finally:
        run([*admin, "-c", f'DROP DATABASE IF EXISTS "{mlflow_db}"'])
        run([*admin, "-c", f'DROP DATABASE IF EXISTS "{db}"'])
        run([*admin, "-c", f'DROP ROLE IF EXISTS "{role}"'])
