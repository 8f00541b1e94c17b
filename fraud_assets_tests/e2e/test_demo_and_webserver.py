"""The README's promise, end to end: `fraud demo` in a fresh project folder, run twice, then
the README's UI command (`dg dev`) started from that folder shows the code location and the
demo's runs, read back through its GraphQL API, with no warning that a command is superseded
and no temporary instance; the webserver on `workspace.yaml` shows the same."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fraud_assets_tests.services.s3_server import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration


def demo(project: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "fraud"), "demo", "--rows", "60000", "--batch-rows", "3000", "--days", "4"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )


def graphql(url: str, query: str) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture
def project(tmp_path) -> Path:
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def test_demo_runs_twice_and_the_webserver_shows_it(project):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUD_", "DAGSTER_"))}
    # A small demo has few test frauds, so its AUPRC is noisy: lower the bar for this test.
    env["FRAUD_AUPRC_FLOOR"] = "0.1"
    # Its trainings still search, for a few seconds each instead of the demo's 15.
    env["FRAUD_SEARCH_BUDGET_SECONDS"] = "3"

    first = demo(project, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "generating 60000 labelled transactions" in first.stdout
    for line in ("training the first model", "scored 4 batch file(s)", "label file(s)", "decision",
                 "production "):
        assert line in first.stdout, first.stdout
    assert (project / "data" / "raw" / "creditcard.csv").exists()

    second = demo(project, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "generating" not in second.stdout  # the data is reused
    # Nothing scored or applied twice.
    assert "scored 0 batch file(s), shadow-scored 0 day(s), applied 0 label file(s), trained 0" in second.stdout

    # A checkout's project folder: the package beside pyproject.toml's [tool.dg].
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    (project / "fraud_assets").symlink_to(REPO / "fraud_assets", target_is_directory=True)
    readme_ui = serve(project, [str(BIN / "dg"), "dev"], {**env, "DAGSTER_HOME": str(project)})
    for warning in ("superseded", "deprecated", "temporary directory", "will not be used"):
        assert warning not in readme_ui.lower(), readme_ui
    serve(project, [str(BIN / "dagster-webserver"), "-w", "workspace.yaml"], env)
    # Nothing a checkout would commit: what the instance writes is ignored by git.
    checkout = {"dagster.yaml", "workspace.yaml", "pyproject.toml", "fraud_assets"}
    leftovers = {p.name + ("/" if p.is_dir() else "") for p in project.iterdir() if p.name not in checkout}
    ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", *sorted(leftovers)],
                             capture_output=True, text=True).stdout.split()
    assert set(ignored) == leftovers


def serve(project: Path, command: list[str], env: dict) -> str:
    """Start the UI on a free port, check what it shows, stop it; its output."""
    port = free_port()
    server = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "webserver did not start"
            assert server.poll() is None, server.stdout.read()
            time.sleep(1)

        locations = graphql(url, """{ workspaceOrError { ... on Workspace { locationEntries {
            name locationOrLoadError { __typename } } } } }""")["workspaceOrError"]["locationEntries"]
        assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in locations] == [
            ("fraud_assets", "RepositoryLocation")
        ]
        runs = graphql(url, """{ runsOrError(filter: {pipelineName: "labels_job"}) {
            ... on Runs { results { runId status tags { key value } } } } }""")["runsOrError"]["results"]
        assert runs and {run["status"] for run in runs} == {"SUCCESS"}
        nodes = graphql(url, """{ assetNodes { assetKey { path } assetMaterializations(limit: 1) {
            runId } } }""")["assetNodes"]
        materialized = {"/".join(n["assetKey"]["path"]) for n in nodes if n["assetMaterializations"]}
        assert {"raw_transactions", "training_dataset", "fraud_model", "production_model",
                "challenger_model", "daily_predictions", "transaction_labels", "realized_performance",
                "challenger_evaluation"} <= materialized

        # The catalog as the UI reads it: owners, tags, code version, table columns, and the
        # freshness policies of the daily outputs.
        catalog = {"/".join(n["assetKey"]["path"]): n for n in graphql(url, """{ assetNodes {
            assetKey { path } opVersion owners { ... on TeamAssetOwner { team } }
            tags { key value }
            internalFreshnessPolicy { ... on CronFreshnessPolicy { deadlineCron lowerBoundDeltaSeconds } }
            metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name } } } } } }""")[
            "assetNodes"]}
        for name, node in catalog.items():
            assert node["owners"] == [{"team": "fraud-ml"}] and node["opVersion"], name
            assert {"stage", "domain"} <= {tag["key"] for tag in node["tags"]}, name
        columns = next(e for e in catalog["daily_predictions"]["metadataEntries"]
                       if e["label"] == "dagster/column_schema")["schema"]["columns"]
        assert [c["name"] for c in columns] == ["transaction_id", "fraud_probability", "is_fraud",
                                                "model_version"]
        assert catalog["daily_predictions"]["internalFreshnessPolicy"] == {
            "deadlineCron": "0 4 * * *", "lowerBoundDeltaSeconds": 7200}
        assert catalog["fraud_model"]["internalFreshnessPolicy"] is None
    finally:
        # Ctrl-C, as a user stops it: dg dev then stops the webserver and daemon it started.
        os.killpg(server.pid, signal.SIGINT)
        try:
            output, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output, _ = server.communicate()
    return output
