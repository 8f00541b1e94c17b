"""A second `fraud demo` repeats nothing the first one did, even when the first one's
retraining was refused by the quality gate and so left no challenger behind; the first makes
the local folder it is given."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FRAUD = Path(sys.executable).parent / "fraud"
SMALL_DEMO = ["demo", "--rows", "10000", "--batch-rows", "500", "--days", "2"]


def test_a_refused_retraining_is_not_retried_by_a_second_demo(tmp_path):
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    # The first demo also makes the local folder, which does not exist yet.
    local = tmp_path / "not" / "there"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUD_", "DAGSTER_"))}
    # The candidate must beat production by a whole AUPRC point: every retraining is refused,
    # while the first model (no production to compare with) passes.
    env |= {"FRAUD_LOCAL_DIR": str(local), "FRAUD_AUPRC_FLOOR": "0.01", "FRAUD_MAX_AUPRC_REGRESSION": "-1",
            "FRAUD_SEARCH_BUDGET_SECONDS": "0", "FRAUD_TRACKING": "off", "FRAUD_PARALLEL_TREES": "1"}

    def demo():
        done = subprocess.run([str(FRAUD), *SMALL_DEMO], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = demo()
    assert (local / "models").is_dir() and (local / "data" / "incoming").is_dir()
    # The checkout's instance settings, and a way to the UI that reads this instance.
    assert (local / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()
    assert f'cd {local} && DAGSTER_HOME="$PWD" ' in first and "dev -m fraud_assets.definitions" in first
    assert "the retrained model failed the quality gate; no challenger" in first
    assert "trained 1 model(s)" in first  # the first model; the refused one is not counted

    second = demo()
    assert "retraining on" not in second  # the demo's line for a retraining (the hint names tmp_path)
    assert "scored 0 batch file(s), shadow-scored 0 day(s), applied 0 label file(s), trained 0" in second
