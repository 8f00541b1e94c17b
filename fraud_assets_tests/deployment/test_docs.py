"""docs/deployment.md stays in step with the files it documents.

The guide it replaces is what users know; these checks keep its security checklist, the
file names it introduced and the project's commands in the new document.
"""

from __future__ import annotations

import re

from .conftest import DEPLOYMENT, REPO

DOC = (REPO / "docs" / "deployment.md").read_text()

GUIDE_CHECKLIST = [
    "EC2 security group restricts SSH to specific IPs",
    "S3 buckets have encryption enabled",
    "IAM roles follow least privilege",
    "Grafana admin password changed from default",
    "Prometheus/Alertmanager not exposed to the public internet",
    "SSL/TLS enabled for Grafana",
    "CloudWatch logs configured for audit trail",
    "Regular security updates applied",
]
FRAUD_COMMANDS = {"s3 bootstrap", "s3 failover", "model backup", "model restore", "model promote",
                  "model sync-aliases"}


def test_every_deployment_file_is_documented() -> None:
    for path in DEPLOYMENT.rglob("*"):
        if path.is_dir() or path.name.startswith(".") or "secrets" in path.parts:
            continue
        rel = path.relative_to(REPO).as_posix()
        if path.suffix == ".service":
            rel = "deployment/systemd/*.service"
        assert rel in DOC, rel
    for name in ("Dockerfile", "docker-compose.yml", "docker-compose.monitoring.yml"):
        assert name in DOC, name


def test_security_checklist_has_every_guide_item_with_an_answer() -> None:
    section = DOC.split("## Security checklist", 1)[1].split("\n## ", 1)[0]
    for item in GUIDE_CHECKLIST:
        (row,) = [ln for ln in section.splitlines() if ln.startswith(f"| {item} |")]
        answer = row.split("|")[2].strip()
        assert len(answer) > 20, item


def test_only_project_commands_that_exist_are_described() -> None:
    used = {" ".join(m) for m in re.findall(r"\bfraud (s3|model) ([a-z][a-z-]*)", DOC)}
    assert used == FRAUD_COMMANDS
    assert "planned" not in DOC.lower()
    assert "cron.d" not in DOC and "crontab" not in DOC
    assert "AmazonS3FullAccess" in DOC  # named only to say it is gone
    assert "attach-role-policy" not in DOC
