"""The CI/CD workflow: actionlint (with ShellCheck for its scripts) and the properties the
deployment relies on, checked offline."""

from __future__ import annotations

import os

import yaml

from .conftest import REPO, VENV_BIN, run, venv_tool

WORKFLOW = REPO / ".github" / "workflows" / "ci-cd.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_actionlint_is_silent() -> None:
    # ShellCheck from the dev dependencies checks every run: script.
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    result = run([venv_tool("actionlint"), "-no-color", str(WORKFLOW)], env=env)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    steps = _workflow()["jobs"]["test"]["steps"]
    assert any("bash .ci/run" in step.get("run", "") for step in steps)
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()


def test_aws_access_is_oidc_only_and_scoped_to_the_tag_jobs() -> None:
    workflow = _workflow()
    text = WORKFLOW.read_text()
    assert workflow["permissions"] == {"contents": "read"}
    assert "secrets." not in text, "no stored credentials: OIDC federation only"
    commands = " ".join(s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"])
    assert "ssh " not in commands and "scp " not in commands, "deploys go through SSM"
    for name, job in workflow["jobs"].items():
        needs_aws = any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])
        assert (job.get("permissions", {}).get("id-token") == "write") == needs_aws, name
    # Only a version tag pushes and deploys.
    assert workflow["jobs"]["image"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert workflow["jobs"]["deploy"]["needs"] == "image"
    deploy = " ".join(s.get("run", "") for s in workflow["jobs"]["deploy"]["steps"])
    assert "aws ssm send-command" in deploy and "AWS-RunShellScript" in deploy
    assert "CARD_FRAUD_IMAGE=" in deploy  # the compose file's image variable
