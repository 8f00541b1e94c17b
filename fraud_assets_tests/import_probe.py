"""Run ``fraud`` in a fresh interpreter and see which heavy libraries it imported.

Start-up time is part of what the lean commands promise (seconds of imports for pandas,
scikit-learn, SciPy, the xgboost package and Dagster), and only a new process shows it.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY_LIBRARIES = ("pandas", "sklearn", "scipy", "xgboost", "dagster")


def run_fraud(argv: list[str]) -> tuple[str, list[str]]:
    """``fraud ARGV``'s standard output, and the heavy libraries loaded once it finished."""
    probe = (
        "import json, sys\n"
        "from fraud_assets.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as done:\n"
        "    if done.code:\n"
        "        raise\n"
        "finally:\n"
        f"    print('LOADED', json.dumps([m for m in {HEAVY_LIBRARIES!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    output, _, loaded = done.stdout.rpartition("LOADED ")
    return output, json.loads(loaded)
