"""The project as `dg` sees it ([tool.dg] in pyproject.toml): `dg check defs` loads the code
location for both wirings, and workspace.yaml still loads it for `dagster dev -w`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUD_", "DAGSTER_"))}
    return {**env, **extra}


@pytest.mark.parametrize("wiring", ["local", "production"])
def test_dg_check_defs_loads_the_code_location(wiring, tmp_path):
    result = subprocess.run(
        [str(BIN / "dg"), "check", "defs"],
        cwd=REPO, env=_env(FRAUD_ENV=wiring, FRAUD_LOCAL_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All definitions loaded successfully" in output
    # No warning about the project's own setup (the environment, the config keys).
    assert "suppress this warning" not in output, output


def test_dg_check_defs_fails_on_a_code_location_that_does_not_load(tmp_path):
    result = subprocess.run(
        [str(BIN / "dg"), "check", "defs"],
        cwd=REPO, env=_env(FRAUD_ENV="staging", FRAUD_LOCAL_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "FRAUD_ENV must be 'local' or 'production'" in result.stdout + result.stderr


def test_workspace_file_loads_the_same_code_location(tmp_path):
    # The temporary instance lands in the working directory: a copy keeps the checkout clean.
    (tmp_path / "workspace.yaml").write_text((REPO / "workspace.yaml").read_text())
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=tmp_path, env=_env(FRAUD_LOCAL_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation successful for code location fraud_assets" in output
